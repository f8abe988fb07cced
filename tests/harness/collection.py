"""Make the working tree importable and findable as ansible_collections.pgops.runbook."""

import os
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
