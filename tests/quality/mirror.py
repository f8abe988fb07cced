"""Copy the collection's current working tree into a scratch directory.

"Current working tree" means what git would see: tracked files plus untracked
files that are not ignored (`git ls-files --cached --others --exclude-standard`),
minus tracked files deleted from the working tree, with their current contents,
committed or not. Symlinks are copied as symlinks, modes are kept.

Usage: python tests/quality/mirror.py DEST [--git]
  DEST is emptied first. With --git, DEST becomes a git repository with every
  copied file added to its index (ansible-test wants a git checkout).
"""

import os
import shutil
import subprocess
import sys


def repo_root():
    here = os.path.dirname(os.path.realpath(__file__))
    return os.path.dirname(os.path.dirname(here))


def tree_files(root):
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root, check=True, stdout=subprocess.PIPE,
    ).stdout.decode("utf-8", "surrogateescape")
    paths = sorted(set(p for p in out.split("\0") if p))
    return [p for p in paths if os.path.lexists(os.path.join(root, p))]


def mirror(root, dest, make_git=False):
    dest = os.path.abspath(dest)
    if os.path.realpath(dest) == os.path.realpath(root):
        raise SystemExit("mirror: refusing to mirror the tree onto itself")
    if os.path.lexists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    files = tree_files(root)
    for rel in files:
        src = os.path.join(root, rel)
        dst = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)
    if make_git:
        env = dict(os.environ, GIT_DIR=os.path.join(dest, ".git"), GIT_WORK_TREE=dest)
        subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", dest],
                       check=True, env=env)
        subprocess.run(["git", "add", "-A", "--", "."], cwd=dest, check=True, env=env)
    return files


def main(argv):
    args = [a for a in argv if a != "--git"]
    if len(args) != 1:
        raise SystemExit(__doc__)
    files = mirror(repo_root(), args[0], make_git="--git" in argv)
    print("mirror: %d files -> %s" % (len(files), args[0]))


if __name__ == "__main__":
    main(sys.argv[1:])
