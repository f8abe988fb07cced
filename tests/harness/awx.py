"""A job as AWX runs it, without AWX: the private data directory AWX hands to ansible-runner.

What AWX does, and what this does the same way:
  * the project (an SCM checkout) in <private data dir>/project, the collections of its
    collections/requirements.yml installed into <private data dir>/requirements_collections
    and put first on the collections path;
  * the inventory written as an executable script printing JSON, in inventory/hosts;
  * the job template's extra variables and the survey's answers (checked against the survey
    spec: required, choices, lengths) in env/extravars, with AWX's own awx_* variables;
  * every credential of a custom type injected by rendering its injectors with its inputs:
    file templates written 0600 under env/, `tower.filename` pointing at them; env injectors
    into env/envvars; extra_vars injectors into their own 0600 file under env/, every value
    marked !unsafe (never templated), passed as `-e @file` on the command line, so they are
    not part of the job's extra variables;
  * ansible-runner's run over that directory, the events it writes being what AWX stores and
    shows.
"""

import json
import os
import shutil
import stat
import sys
import tempfile

import ansible_runner
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tests.harness.collection import ROOT, install_artifact
from tests.harness.playbook import PlaybookRun, runner_env

AWX_DIR = os.path.join(ROOT, "docs", "awx")


def load_json(*parts):
    with open(os.path.join(AWX_DIR, *parts)) as handle:
        return json.load(handle)


class SurveyError(ValueError):
    """An answer AWX's survey would refuse."""


def survey_answers(spec, answers):
    """The extra variables AWX makes of `answers` (variable -> value) to the survey `spec`."""
    questions = {q["variable"]: q for q in spec["spec"]}
    unknown = set(answers) - set(questions)
    if unknown:
        raise SurveyError("not in the survey: %s" % ", ".join(sorted(unknown)))
    extra = {}
    for variable, question in questions.items():
        value = answers.get(variable, question.get("default", ""))
        if value in ("", None):
            if question.get("required"):
                raise SurveyError("%s is required" % variable)
            continue
        if question["type"] == "multiplechoice" and value not in question["choices"]:
            raise SurveyError("%s: %r is not one of %s" % (variable, value, question["choices"]))
        if question["type"] == "text" and not question.get("min", 0) <= len(value) <= question.get("max", 1024):
            raise SurveyError("%s: length out of %s..%s" % (variable, question.get("min", 0), question.get("max")))
        extra[variable] = value
    return extra


class _Unsafe(str):
    """A value AWX writes as !unsafe: Ansible never templates it."""


class _AwxDumper(yaml.SafeDumper):
    """YAML as AWX writes a credential's extra variables: every value !unsafe."""


_AwxDumper.add_representer(_Unsafe, lambda dumper, value: dumper.represent_scalar("!unsafe", str(value)))


class AwxJob:
    """One job: a private data directory made as AWX makes it, run with ansible-runner."""

    def __init__(self, base_dir, project_src, collections_artifact):
        self.dir = tempfile.mkdtemp(prefix="awx-job-", dir=base_dir)
        self.env_dir = os.path.join(self.dir, "env")
        os.makedirs(self.env_dir)
        self.project = os.path.join(self.dir, "project")
        shutil.copytree(project_src, self.project)
        self.collections = os.path.join(self.dir, "requirements_collections")
        install_artifact(collections_artifact, self.collections, self.dir)
        self.extravars = {}
        self.envvars = {}
        self.cmdline = []

    def inventory(self, group, hosts):
        """hosts: {name: hostvars}; written as AWX writes it, a script printing the inventory as JSON."""
        data = {"all": {"children": [group]}, group: {"hosts": sorted(hosts)}, "_meta": {"hostvars": hosts}}
        os.makedirs(os.path.join(self.dir, "inventory"))
        path = os.path.join(self.dir, "inventory", "hosts")
        with open(path, "w") as handle:
            handle.write("#!%s\nprint(%r)\n" % (sys.executable, json.dumps(data)))
        os.chmod(path, stat.S_IRWXU)

    def template(self, extra_vars=None, survey=None, answers=None, user="admin", name="job"):
        """The job template's extra variables and its survey's answers, with AWX's own variables."""
        self.extravars.update(extra_vars or {})
        if survey:
            self.extravars.update(survey_answers(load_json("surveys", survey), answers or {}))
        self.extravars.update(awx_job_id=4242, awx_job_launch_type="manual", awx_user_name=user,
                              awx_job_template_name=name, tower_user_name=user)

    def credential(self, type_file, inputs):
        """Inject a credential of the custom type in docs/awx/credential_types/<type_file>."""
        kind = load_json("credential_types", type_file)
        namespace = {}
        for field in kind["inputs"]["fields"]:
            namespace[field["id"]] = inputs.get(field["id"], field.get("default", ""))
        missing = [f for f in kind["inputs"].get("required", []) if not namespace.get(f)]
        if missing:
            raise ValueError("credential %s lacks %s" % (kind["name"], missing))
        sandbox = ImmutableSandboxedEnvironment()
        injectors = kind.get("injectors", {})
        filenames = {}
        for key, text in injectors.get("file", {}).items():
            path = self._private_file(sandbox.from_string(text).render(**namespace))
            filenames[key.split(".", 1)[1] if "." in key else None] = path
        namespace["tower"] = {"filename": filenames.get(None) or filenames}

        def render(node):
            if isinstance(node, dict):
                return {render(k): render(v) for k, v in node.items()}
            if isinstance(node, list):
                return [render(v) for v in node]
            return _Unsafe(sandbox.from_string(node).render(**namespace))

        for name, value in injectors.get("env", {}).items():
            self.envvars[name] = str(render(value))
        extra = render(injectors.get("extra_vars", {}))
        if extra:
            path = self._private_file(yaml.dump(extra, Dumper=_AwxDumper))
            self.cmdline.extend(["-e", "@" + path])

    def _private_file(self, text):
        fd, path = tempfile.mkstemp(dir=self.env_dir)
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        return path

    def run(self, playbook, verbosity=0):
        """Run the project's `playbook`; return PlaybookRun (events, stats, stdout)."""
        envvars = runner_env(self.dir, self.collections + os.pathsep + os.path.join(self.dir, ".ansible", "collections"))
        envvars["JOB_ID"] = "4242"
        envvars.update(self.envvars)
        runner = ansible_runner.run(
            private_data_dir=self.dir, playbook=playbook, envvars=envvars, extravars=self.extravars,
            cmdline=" ".join(self.cmdline) or None, verbosity=verbosity or None, quiet=True,
            settings={"suppress_ansible_output": True, "job_timeout": 1200})
        return PlaybookRun(runner, self.dir)

    def published_text(self):
        """Everything the job left for AWX to store and show: the runner's artifacts (events,
        stdout, the command and its environment)."""
        texts = []
        for top, dummy, files in os.walk(os.path.join(self.dir, "artifacts")):
            for name in files:
                with open(os.path.join(top, name), errors="replace") as handle:
                    texts.append(handle.read())
        return "\n".join(texts)

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)
