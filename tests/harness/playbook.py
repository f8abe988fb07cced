"""Run plays through ansible-runner (what AWX runs) and collect each task's result."""

import json
import os
import shutil
import sys
import tempfile

import ansible_runner
import yaml

from tests.harness.collection import ensure_collection_path
from tests.harness.return_docs import assert_returns_documented


class PlaybookRun:
    """What a run produced: status, rc, full stdout, and per-task results."""

    def __init__(self, runner, workdir):
        self.status = runner.status
        self.rc = runner.rc
        self.stdout = runner.stdout.read()
        self.events = list(runner.events)
        self.results = []
        for event in self.events:
            if event.get("event") in ("runner_on_ok", "runner_on_failed", "runner_on_skipped"):
                data = event["event_data"]
                res = dict(data.get("res") or {})
                res.setdefault("failed", event["event"] == "runner_on_failed")
                res["_task"] = data.get("task")
                self.results.append(res)
        self.stats = {}
        for event in self.events:
            if event.get("event") == "playbook_on_stats":
                self.stats = event["event_data"].get("artifact_data") or {}
        self.workdir = workdir
        # Every test that runs a play also checks that the pgops modules document what they returned.
        assert_returns_documented(self.events)

    def result(self, task_name):
        """The result of the (last) task named `task_name`."""
        found = [r for r in self.results if r["_task"] == task_name]
        assert found, "no result for task %r; tasks: %s\n%s" % (task_name, [r["_task"] for r in self.results], self.stdout[-4000:])
        return found[-1]

    @property
    def all_text(self):
        """Everything a user could see: stdout and every event, serialised."""
        return self.stdout + "\n" + json.dumps(self.events, default=str)


def runner_env(workdir, collections):
    """The environment of a play: this collection path only, the venv's tools, temp files and
    HOME inside the run's own directory, no colours."""
    return {
        "ANSIBLE_COLLECTIONS_PATH": collections,
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_LOCAL_TEMP": os.path.join(workdir, "tmp"),
        "ANSIBLE_REMOTE_TEMP": os.path.join(workdir, "tmp"),
        "HOME": workdir,
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    }


def run_play(tasks, play_vars=None, check=False, diff=False, verbosity=0, module_defaults=None, envvars=None,
             extravars=None, playbook=None, inventory=None):
    """Run `tasks` (a list of task dicts) on localhost, or a playbook file; return PlaybookRun."""
    collections = ensure_collection_path()
    workdir = tempfile.mkdtemp(prefix="pgops-play-")
    if playbook is None:
        play = dict(name="pgops test play", hosts="localhost", gather_facts=False, tasks=tasks)
        if play_vars:
            play["vars"] = play_vars
        if module_defaults:
            play["module_defaults"] = module_defaults
        os.makedirs(os.path.join(workdir, "project"))
        playbook = os.path.join(workdir, "project", "play.yml")
        with open(playbook, "w") as handle:
            yaml.safe_dump([play], handle, sort_keys=False)
    env = runner_env(workdir, collections)
    env.update(envvars or {})
    cmdline = []
    if check:
        cmdline.append("--check")
    if diff:
        cmdline.append("--diff")
    if inventory is None:
        inventory = "localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable
    runner = ansible_runner.run(
        private_data_dir=workdir,
        playbook=playbook,
        inventory=inventory,
        envvars=env,
        extravars=extravars or {},
        cmdline=" ".join(cmdline) or None,
        verbosity=verbosity or None,
        quiet=True,
        settings={"suppress_ansible_output": True},
    )
    run = PlaybookRun(runner, workdir)
    if not os.environ.get("PGOPS_KEEP_PLAYS"):
        # Everything a test reads is in the run's events, read above; the private data dir is
        # left behind only when asked (PGOPS_KEEP_PLAYS=1), or /tmp fills up run after run.
        shutil.rmtree(workdir, ignore_errors=True)
    return run
