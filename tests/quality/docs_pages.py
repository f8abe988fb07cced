"""The docs/ pages made from the roles' READMEs, and the pages every playbook needs.

    python tests/quality/docs_pages.py          # write docs/roles/<role>.md from roles/<role>/README.md
    python tests/quality/docs_pages.py --check  # exit 1 naming every stale or missing page

docs/roles/<role>.md is a comment line naming its source, then roles/<role>/README.md
verbatim: edit the README, then run this. A page under docs/roles/ that starts with that
comment but whose role is gone is stale (removed when writing). docs/playbooks/<name>.md
for playbooks/<name>.yml is written by hand; a missing one is reported by both modes.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEADER = "<!-- The role's README, for the docs site; roles/%s/README.md is the source. -->\n"
GENERATED_PREFIX = "<!-- The role's README, for the docs site; "


def roles(root=ROOT):
    """The roles that have a README, sorted."""
    base = os.path.join(root, "roles")
    return sorted(name for name in os.listdir(base) if os.path.isfile(os.path.join(base, name, "README.md")))


def playbooks(root=ROOT):
    """The names of playbooks/*.yml, sorted."""
    base = os.path.join(root, "playbooks")
    return sorted(name[:-4] for name in os.listdir(base) if name.endswith(".yml") and os.path.isfile(os.path.join(base, name)))


def role_page(role, root=ROOT):
    """What docs/roles/<role>.md must hold."""
    with open(os.path.join(root, "roles", role, "README.md"), encoding="utf-8") as handle:
        return HEADER % role + handle.read()


def read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def orphan_role_pages(root=ROOT):
    """Generated pages under docs/roles/ whose role no longer has a README."""
    base = os.path.join(root, "docs", "roles")
    if not os.path.isdir(base):
        return []
    known = set(roles(root))
    return sorted(os.path.join("docs", "roles", name) for name in os.listdir(base)
                  if name.endswith(".md") and name[:-3] not in known
                  and (read(os.path.join(base, name)) or "").startswith(GENERATED_PREFIX))


def problems(root=ROOT):
    """One line per page that is missing, differs from its source, or is stale."""
    found = []
    for role in roles(root):
        relative = os.path.join("docs", "roles", role + ".md")
        current = read(os.path.join(root, relative))
        if current is None:
            found.append("%s is missing (made from roles/%s/README.md)" % (relative, role))
        elif current != role_page(role, root):
            found.append("%s differs from roles/%s/README.md" % (relative, role))
    for relative in orphan_role_pages(root):
        found.append("%s is stale: its role has no README" % relative)
    found.extend(missing_playbook_pages(root))
    return found


def missing_playbook_pages(root=ROOT):
    return ["docs/playbooks/%s.md is missing (written by hand for playbooks/%s.yml)" % (name, name)
            for name in playbooks(root) if not os.path.isfile(os.path.join(root, "docs", "playbooks", name + ".md"))]


def write(root=ROOT):
    """Write every role page that is missing or differs, remove stale ones; return the paths touched."""
    touched = []
    os.makedirs(os.path.join(root, "docs", "roles"), exist_ok=True)
    for role in roles(root):
        relative = os.path.join("docs", "roles", role + ".md")
        wanted = role_page(role, root)
        if read(os.path.join(root, relative)) != wanted:
            with open(os.path.join(root, relative), "w", encoding="utf-8") as handle:
                handle.write(wanted)
            touched.append(relative)
    for relative in orphan_role_pages(root):
        os.remove(os.path.join(root, relative))
        touched.append(relative + " (removed)")
    return touched


def main(argv):
    if argv not in ([], ["--check"]):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    if argv == ["--check"]:
        found = problems()
        for line in found:
            print("docs-pages: " + line)
        if not found:
            print("docs-pages: every role and playbook has its page, up to date")
        return 1 if found else 0
    for relative in write():
        print("docs-pages: wrote " + relative)
    missing = missing_playbook_pages()
    for line in missing:
        print("docs-pages: " + line)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
