"""Changelog checks and CHANGELOG.md generation (antsibull-changelog).

    python tests/quality/changelog.py lint      # what `make changelog-lint` runs
    python tests/quality/changelog.py generate  # rewrite CHANGELOG.md

lint:
  1. `antsibull-changelog lint` (fragments and changelogs/config.yaml);
  2. `antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml`;
  3. CHANGELOG.md is what `generate` would write now;
  4. a release dry run on a scratch copy of the working tree:
     `antsibull-changelog release` for the galaxy.yml version (or, when that
     version is already released, the next patch version), as the release
     manager will run it -- it loads every plugin's documentation through
     ansible-doc, so broken docs fail here and not on release day. Its
     CHANGELOG.md is kept as a preview in .build/changelog/preview/CHANGELOG.md.

generate: CHANGELOG.md from changelogs/changelog.yaml. antsibull-changelog
refuses to write a changelog before the first release, so until then
CHANGELOG.md is a short placeholder with the same title (`antsibull-changelog
release` replaces it).
"""

import datetime
import difflib
import os
import re
import shutil
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.realpath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.dirname(os.path.abspath(sys.executable))
SCRATCH = os.path.join(ROOT, ".build", "changelog")
PLACEHOLDER = """\
# pgops\\.runbook Release Notes

No release yet. The changes that the first release will list are in
`changelogs/fragments/`; `make changelog-lint` writes a preview of its notes to
`.build/changelog/preview/CHANGELOG.md`.
"""

sys.path.insert(0, HERE)
import mirror  # noqa: E402  pylint: disable=wrong-import-position


def tool(*args, cwd=ROOT, quiet=False):
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    # ansible-doc (used to list plugins) must see only the tree being released.
    env["ANSIBLE_COLLECTIONS_SCAN_SYS_PATH"] = "false"
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)
    env.pop("ANSIBLE_COLLECTIONS_PATHS", None)
    proc = subprocess.run([os.path.join(BIN, "antsibull-changelog")] + list(args), cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if proc.stdout and (proc.returncode != 0 or not quiet):
        sys.stdout.write("".join("    " + line + "\n" for line in proc.stdout.splitlines()))
    return proc.returncode


def load_yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def changelog_output_file():
    config = load_yaml(os.path.join(ROOT, "changelogs", "config.yaml"))
    outputs = config.get("output") or [{"file": "CHANGELOG.rst"}]
    return outputs[0]["file"]


def releases(root=ROOT):
    return load_yaml(os.path.join(root, "changelogs", "changelog.yaml")).get("releases") or {}


def expected_changelog():
    """What CHANGELOG.md should contain right now."""
    if not releases():
        return PLACEHOLDER
    work = os.path.join(SCRATCH, "generate")
    mirror.mirror(ROOT, work, make_git=True)  # else antsibull sees .build as git-ignored
    if tool("generate", cwd=work) != 0:
        return None
    with open(os.path.join(work, changelog_output_file()), encoding="utf-8") as handle:
        return handle.read()


def dry_run_version():
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        version = str(yaml.safe_load(handle)["version"])
    if version not in releases():
        return version
    core = re.split(r"[-+]", version, maxsplit=1)[0]
    major, minor, patch = (core.split(".") + ["0", "0"])[:3]
    return "%s.%s.%d" % (major, minor, int(patch) + 1)


def step(title, ok):
    print("  %-5s %s" % ("ok" if ok else "FAIL", title))
    return ok


def lint():
    results = []
    print("changelog: antsibull-changelog lint")
    results.append(step("fragments and config", tool("lint", "-v") == 0))
    results.append(step("changelogs/changelog.yaml",
                        tool("lint-changelog-yaml", "changelogs/changelog.yaml") == 0))

    name = changelog_output_file()
    expected = expected_changelog()
    path = os.path.join(ROOT, name)
    actual = open(path, encoding="utf-8").read() if os.path.exists(path) else None
    if expected is not None and actual != expected:
        diff = difflib.unified_diff((actual or "").splitlines(True), expected.splitlines(True),
                                    name + " (now)", name + " (expected)")
        sys.stdout.write("".join("    " + line for line in diff))
        print("    -> run `make changelog` to regenerate %s" % name)
    results.append(step("%s is up to date" % name, expected is not None and actual == expected))

    version = dry_run_version()
    work = os.path.join(SCRATCH, "release")
    mirror.mirror(ROOT, work, make_git=True)  # else antsibull sees .build as git-ignored
    ok = tool("release", "--reload-plugins", "--version", version, "--date", datetime.date.today().isoformat(),
              cwd=work, quiet=True) == 0
    if ok:
        preview = os.path.join(SCRATCH, "preview")
        os.makedirs(preview, exist_ok=True)
        shutil.copy2(os.path.join(work, name), os.path.join(preview, name))
        ok = tool("lint-changelog-yaml", "changelogs/changelog.yaml", cwd=work) == 0
    results.append(step("release dry run for %s%s" % (
        version, " (preview: .build/changelog/preview/%s)" % name if ok else ""), ok))
    return 0 if all(results) else 1


def generate():
    expected = expected_changelog()
    if expected is None:
        return 1
    name = changelog_output_file()
    with open(os.path.join(ROOT, name), "w", encoding="utf-8") as handle:
        handle.write(expected)
    print("changelog: wrote %s" % name)
    return 0


def main(argv):
    commands = {"lint": lint, "generate": generate}
    if len(argv) != 1 or argv[0] not in commands:
        raise SystemExit(__doc__)
    return commands[argv[0]]()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
