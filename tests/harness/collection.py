"""Make the working tree importable and findable as ansible_collections.pgops.runbook."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS_PATH = os.path.join(ROOT, ".build", "collections")


def ensure_collection_path():
    """Create .build/collections/ansible_collections/pgops/runbook -> repo root; return the collections path."""
    parent = os.path.join(COLLECTIONS_PATH, "ansible_collections", "pgops")
    link = os.path.join(parent, "runbook")
    os.makedirs(parent, exist_ok=True)
    if os.path.realpath(link) != ROOT:
        # Made beside it and renamed over it: two test processes starting at once both succeed.
        staged = "%s.%d.tmp" % (link, os.getpid())
        os.symlink(ROOT, staged)
        os.replace(staged, link)
    if COLLECTIONS_PATH not in sys.path:
        sys.path.insert(0, COLLECTIONS_PATH)
    return COLLECTIONS_PATH


def build_artifact(work_dir):
    """`ansible-galaxy collection build` of the working tree into `work_dir`; return the artifact's path."""
    galaxy = os.path.join(os.path.dirname(sys.executable), "ansible-galaxy")
    env = dict(os.environ, HOME=work_dir, ANSIBLE_COLLECTIONS_PATH=os.path.join(work_dir, "unused"))
    subprocess.run([galaxy, "collection", "build", "--output-path", work_dir, ROOT], check=True, env=env,
                   capture_output=True, timeout=300)
    return [os.path.join(work_dir, name) for name in os.listdir(work_dir) if name.endswith(".tar.gz")][0]


def install_artifact(artifact, collections_path, home):
    """`ansible-galaxy collection install --offline` of `artifact` into `collections_path`."""
    galaxy = os.path.join(os.path.dirname(sys.executable), "ansible-galaxy")
    subprocess.run([galaxy, "collection", "install", "--offline", "-p", collections_path, artifact], check=True,
                   capture_output=True, timeout=300, env=dict(os.environ, HOME=home, ANSIBLE_COLLECTIONS_PATH=collections_path))
