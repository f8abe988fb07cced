"""docs/ has a page per role (its README, made by tests/quality/docs_pages.py) and per
playbook, and docs/README.md lists every page."""

import os
import re
import shutil

import pytest

from tests.quality import docs_pages

ROOT = docs_pages.ROOT


@pytest.mark.parametrize("role", docs_pages.roles())
def test_every_role_has_its_readme_as_a_page(role):
    page = docs_pages.read(os.path.join(ROOT, "docs", "roles", role + ".md"))
    assert page is not None, "docs/roles/%s.md is missing: run python tests/quality/docs_pages.py" % role
    assert page == docs_pages.role_page(role), \
        "docs/roles/%s.md differs from roles/%s/README.md: run python tests/quality/docs_pages.py" % (role, role)


@pytest.mark.parametrize("playbook", docs_pages.playbooks())
def test_every_playbook_has_a_page(playbook):
    assert os.path.isfile(os.path.join(ROOT, "docs", "playbooks", playbook + ".md")), \
        "docs/playbooks/%s.md is missing (playbooks/%s.yml)" % (playbook, playbook)


def test_no_generated_page_outlives_its_role():
    assert docs_pages.orphan_role_pages() == []


def test_the_index_links_every_page():
    """docs/README.md links every top-level page and every role and playbook page (docs/awx/
    is the AWX page's own material, linked from docs/awx.md)."""
    docs = os.path.join(ROOT, "docs")
    index = docs_pages.read(os.path.join(docs, "README.md"))
    assert index is not None, "docs/README.md (the index) is missing"
    linked = set(os.path.normpath(target) for target in re.findall(r"\]\(([^)#\s]+\.md)\)", index))
    pages = set(name for name in os.listdir(docs) if name.endswith(".md") and name != "README.md")
    for folder in ("roles", "playbooks"):
        pages.update(folder + "/" + name for name in os.listdir(os.path.join(docs, folder)) if name.endswith(".md"))
    assert sorted(pages - linked) == []


# --- the generator itself, on a scratch tree ------------------------------------------------------

@pytest.fixture
def tree(tmp_path):
    for role in ("alpha", "beta"):
        os.makedirs(tmp_path / "roles" / role)
        (tmp_path / "roles" / role / "README.md").write_text("# %s\n\nWhat %s does.\n" % (role, role))
    os.makedirs(tmp_path / "playbooks")
    (tmp_path / "playbooks" / "alpha.yml").write_text("---\n")
    os.makedirs(tmp_path / "docs" / "playbooks")
    (tmp_path / "docs" / "playbooks" / "alpha.md").write_text("# alpha\n")
    return str(tmp_path)


def test_the_generator_writes_pages_the_check_then_accepts(tree):
    assert len(docs_pages.problems(tree)) == 2
    assert docs_pages.write(tree) == ["docs/roles/alpha.md", "docs/roles/beta.md"]
    assert docs_pages.problems(tree) == []
    assert docs_pages.read(os.path.join(tree, "docs", "roles", "beta.md")) == (
        "<!-- The role's README, for the docs site; roles/beta/README.md is the source. -->\n# beta\n\nWhat beta does.\n")


def test_the_check_names_a_stale_page_a_gone_role_and_a_missing_playbook_page(tree):
    docs_pages.write(tree)
    with open(os.path.join(tree, "roles", "alpha", "README.md"), "a") as handle:
        handle.write("A new variable.\n")
    shutil.rmtree(os.path.join(tree, "roles", "beta"))
    with open(os.path.join(tree, "playbooks", "gamma.yml"), "w") as handle:
        handle.write("---\n")
    assert docs_pages.problems(tree) == [
        "docs/roles/alpha.md differs from roles/alpha/README.md",
        "docs/roles/beta.md is stale: its role has no README",
        "docs/playbooks/gamma.md is missing (written by hand for playbooks/gamma.yml)",
    ]
    assert docs_pages.write(tree) == ["docs/roles/alpha.md", "docs/roles/beta.md (removed)"]


def test_a_hand_written_page_under_docs_roles_is_left_alone(tree):
    docs_pages.write(tree)
    with open(os.path.join(tree, "docs", "roles", "overview.md"), "w") as handle:
        handle.write("# How the roles fit together\n")
    assert docs_pages.problems(tree) == []
    docs_pages.write(tree)
    assert os.path.isfile(os.path.join(tree, "docs", "roles", "overview.md"))
