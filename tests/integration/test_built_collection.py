"""The collection as users get it: `ansible-galaxy collection build` makes an artifact without
tests' and developers' clutter, it installs into an empty collections path, the playbooks
run from the installed copy (health.yml here, migrate.yml and backup.yml in test_awx_job.py), and ansible-builder
makes the execution environment's build context from it."""

import os
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml

from tests.conftest import ROOT, connection_vars
from tests.harness.collection import build_artifact, install_artifact
from tests.harness.playbook import run_play

pytestmark = pytest.mark.integration

# Nothing of these may be in the artifact.
CLUTTER = ("tests/", "benchmarks/", ".venv/", ".build/", ".git/", ".ci/", "Makefile", "pytest.ini",
           "requirements-dev.txt", "changelogs/fragments/", ".ansible-lint", "extensions/molecule", ".venv-")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(artifact path, its member names, the collections path it was installed into)."""
    work = tmp_path_factory.mktemp("galaxy")
    artifact = build_artifact(str(work))
    with tarfile.open(artifact) as handle:
        names = handle.getnames()
    collections = work / "collections"
    install_artifact(artifact, str(collections), str(work))
    return artifact, names, str(collections)


def test_the_artifact_holds_what_users_run_and_no_clutter(installed):
    artifact, names, dummy = installed
    assert os.path.basename(artifact) == "pgops-runbook-0.1.0.tar.gz"
    clutter = [n for n in names if n.startswith(CLUTTER) or "__pycache__" in n or n.endswith(".pyc")]
    assert clutter == []
    for needed in ("MANIFEST.json", "meta/runtime.yml", "README.md", "requirements.txt", "CHANGELOG.md",
                   "plugins/modules/migrate.py", "plugins/modules/migration_lint.py", "plugins/module_utils/lint/rules/registry.py",
                   "roles/preflight/meta/argument_specs.yml", "playbooks/migrate.yml", "playbooks/vars/env/production.yml",
                   "examples/healthcare/migrations/V1__patients_providers_appointments.sql"):
        assert needed in names, needed


def run_installed(collections, playbook, extravars):
    inventory = "[databases]\ndb1 ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable
    path = os.path.join(collections, "ansible_collections", "pgops", "runbook", "playbooks", playbook)
    return run_play(None, playbook=path, inventory=inventory, extravars=extravars,
                    envvars={"ANSIBLE_COLLECTIONS_PATH": collections})


def test_the_playbooks_run_from_the_installed_copy(installed, pg):
    # health.yml here; migrate.yml (and backup.yml) from the installed artifact in test_awx_job.py,
    # as AWX runs them: the whole runbook, a failure rolled back, a backup to S3.
    dummy, dummy, collections = installed
    copy = os.path.join(collections, "ansible_collections", "pgops", "runbook")
    assert not os.path.islink(copy) and os.path.realpath(copy) != os.path.realpath(ROOT)
    health = run_installed(collections, "health.yml", dict(env="development", pgops_connection=connection_vars(pg)))
    assert health.status == "successful", health.stdout[-3000:]
    assert health.stats["health_report"]["status"] in ("ok", "warning")
    # The role that ran is the installed copy's, not the working tree's.
    paths = set(e["event_data"].get("task_path", "").split(":")[0] for e in health.events if e.get("event") == "runner_on_ok")
    assert os.path.join(copy, "roles", "health", "tasks", "main.yml") in paths
    assert not [p for p in paths if p.startswith(ROOT + os.sep)]


def test_ansible_builder_creates_the_execution_environment_context(installed, tmp_path):
    # Building the image needs podman or docker, which these machines lack; `create` writes the
    # build context, and the introspection it ships reads what the installed collection needs.
    artifact, dummy, collections = installed
    shutil.copy(os.path.join(ROOT, "execution-environment.yml"), str(tmp_path))
    shutil.copy(artifact, str(tmp_path))
    builder = os.path.join(os.path.dirname(sys.executable), "ansible-builder")
    subprocess.run([builder, "create", "-f", "execution-environment.yml", "-c", "context"], cwd=str(tmp_path),
                   check=True, capture_output=True, timeout=300)
    context = tmp_path / "context"
    assert (context / "_build" / "galaxy" / os.path.basename(artifact)).is_file()
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert requirements["collections"][0]["name"] == "pgops.runbook"
    introspected = subprocess.run([sys.executable, str(context / "_build" / "scripts" / "introspect.py"), "introspect",
                                   collections], check=True, capture_output=True, text=True, timeout=120).stdout
    needs = yaml.safe_load(introspected)
    ours = [line.split("#")[0].strip() for line in needs["python"] + needs["system"] if "from collection pgops.runbook" in line]
    for package in ("psycopg2-binary>=2.9", "boto3>=1.26", "pglast>=6", "postgresql-client [platform:dpkg]", "zstd", "lz4",
                    "gnupg [platform:dpkg]"):
        assert package in ours, (package, needs)
