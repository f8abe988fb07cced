"""Every role and playbook YAML file loads with Ansible's own loader without a warning: a
duplicate key (a YAML merge that repeats a key, say) would otherwise print a [WARNING] in
every job that loads the file, AWX jobs included."""

import glob
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOAD = """
import sys
from ansible.parsing.dataloader import DataLoader
loader = DataLoader()
for path in sys.argv[1:]:
    loader.load_from_file(path)
"""


def yaml_files():
    patterns = ("roles/*/*/*.yml", "roles/*/*/*/*.yml", "playbooks/*.yml", "playbooks/*/*.yml", "playbooks/*/*/*.yml",
                "examples/awx-project/*.yml")
    return sorted(path for pattern in patterns for path in glob.glob(os.path.join(ROOT, pattern)))


def test_every_role_and_playbook_file_loads_without_a_warning():
    files = yaml_files()
    assert len(files) > 40
    loaded = subprocess.run([sys.executable, "-c", LOAD] + files, capture_output=True, text=True, check=False, timeout=120,
                            env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="1"))
    assert loaded.returncode == 0, loaded.stderr
    assert "WARNING" not in loaded.stderr and "ERROR" not in loaded.stderr, loaded.stderr


def test_a_repeated_key_is_caught(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("- name: x\n  vars: &a {k: 1}\n  ansible.builtin.debug:\n    <<: *a\n    k: 2\n")
    loaded = subprocess.run([sys.executable, "-c", LOAD, str(bad)], capture_output=True, text=True, check=False, timeout=60,
                            env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    assert "duplicate mapping key" in loaded.stderr
