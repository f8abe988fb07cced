"""The molecule scenarios (extensions/molecule/<role>/): `molecule test -s <scenario>` for each
scenario directory found there, so a new scenario is tested by adding its directory. Each run
converges its role on this machine against a throw-away PostgreSQL cluster of its own (made by
the scenarios' shared create playbook, removed by their destroy playbook), with a HOME of its
own: molecule's ephemeral directory is new for every run and nothing lands in ~/.ansible."""

import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.harness.collection import ensure_collection_path

pytestmark = pytest.mark.integration

SCENARIOS_DIR = os.path.join(ROOT, "extensions", "molecule")
SCENARIOS = sorted(name for name in os.listdir(SCENARIOS_DIR)
                   if os.path.isfile(os.path.join(SCENARIOS_DIR, name, "molecule.yml")))
MOLECULE = os.path.join(os.path.dirname(sys.executable), "molecule")
# Seconds a scenario may take on a loaded machine before the run is stopped as hung.
TIMEOUT_S = 600
OUTPUT_TAIL = 8000


def molecule_env(home):
    """The environment of one molecule run: the venv's bin first on PATH (molecule calls
    ansible-config and ansible-playbook), the working tree as the collection, a HOME of its own
    and no colours; no MOLECULE_* variable from the caller's environment."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("MOLECULE_")}
    env.update({
        "HOME": home,
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
        "ANSIBLE_COLLECTIONS_PATH": ensure_collection_path(),
        "ANSIBLE_NOCOLOR": "1",
        "NO_COLOR": "1",
        "PY_COLORS": "0",
    })
    return env


def test_scenarios_are_found():
    """Every role has its scenario (a scenario directory that molecule would not find fails here)."""
    roles = sorted(os.listdir(os.path.join(ROOT, "roles")))
    assert [role for role in roles if role not in SCENARIOS] == []


def run_molecule(args, env):
    """(exit status, output) of `molecule <args>` from the repository root. A run that outlives
    TIMEOUT_S is killed with everything it started (its own process group): (None, output)."""
    with subprocess.Popen([MOLECULE] + args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, start_new_session=True) as proc:
        try:
            output = proc.communicate(timeout=TIMEOUT_S)[0]
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            return None, proc.communicate()[0]
    return proc.returncode, output


# Each scenario its own pytest-xdist group: they are independent, and spread over the workers.
@pytest.mark.parametrize("scenario", [pytest.param(name, marks=pytest.mark.xdist_group("molecule-" + name)) for name in SCENARIOS])
def test_molecule_scenario(scenario, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = molecule_env(str(home))
    status, output = run_molecule(["test", "-s", scenario], env)
    if status is None:
        # molecule's own destroy step did not run: stop the scenario's cluster now.
        run_molecule(["destroy", "-s", scenario], env)
        pytest.fail("molecule test -s %s ran longer than %d s:\n%s" % (scenario, TIMEOUT_S, output[-OUTPUT_TAIL:]))
    assert status == 0, "molecule test -s %s exited %d:\n%s" % (scenario, status, output[-OUTPUT_TAIL:])
