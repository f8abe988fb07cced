"""DOCUMENTATION is the one source of truth for options: the argument spec a module
builds must match it (plus the connection doc fragment), and health_check's
description must list every check with its threshold defaults."""

import importlib
import re

import pytest
import yaml

from ansible_collections.pgops.runbook.plugins.doc_fragments.connection import ModuleDocFragment
from ansible_collections.pgops.runbook.plugins.module_utils import module_base
from ansible_collections.pgops.runbook.plugins.module_utils.health.registry import CHECKS

MODULES = ["health_check", "db_snapshot", "backup", "backup_info", "restore", "migrate", "migration_lint", "query_check", "pgbouncer",
           "database", "reference_data"]
FRAGMENT = "pgops.runbook.connection"


def module_file(name):
    return importlib.import_module("ansible_collections.pgops.runbook.plugins.modules.%s" % name)


def documentation(name):
    """The module's DOCUMENTATION; the tests that read it are skipped while it does not
    parse, which test_documentation_is_valid_yaml reports."""
    try:
        return yaml.safe_load(module_file(name).DOCUMENTATION)
    except yaml.YAMLError as exc:
        pytest.fail("DOCUMENTATION of %s does not parse: %s" % (name, str(exc).splitlines()[0]))


@pytest.mark.parametrize("name", [
    "health_check",
    "db_snapshot",
])
def test_documentation_is_valid_yaml(name):
    doc = yaml.safe_load(module_file(name).DOCUMENTATION)
    assert doc["module"] == name
    yaml.safe_load(module_file(name).EXAMPLES)
    yaml.safe_load(module_file(name).RETURN)


def test_connection_fragment_is_valid_yaml():
    assert "login_password" in yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]


def fragment_options():
    try:
        return yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    except yaml.YAMLError as exc:
        pytest.fail("the connection doc fragment does not parse: %s" % str(exc).splitlines()[0])


class _SpecRecorded(SystemExit):
    pass


def argument_spec_of(name, monkeypatch):
    """The argument spec and keyword arguments `main()` hands to AnsibleModule."""
    recorded = {}

    class RecordingModule:
        def __init__(self, argument_spec, **kwargs):
            recorded.update(spec=argument_spec, kwargs=kwargs)
            raise _SpecRecorded(0)

    monkeypatch.setattr(module_base, "AnsibleModule", RecordingModule)
    with pytest.raises(_SpecRecorded):
        module_file(name).main()
    return recorded["spec"], recorded["kwargs"]


def fragment(reference):
    """The options of doc fragment `pgops.runbook.<file>[.<variable>]`."""
    parts = reference.split(".")
    module = importlib.import_module("ansible_collections.pgops.runbook.plugins.doc_fragments.%s" % parts[2])
    text = getattr(module.ModuleDocFragment, parts[3].upper() if len(parts) > 3 else "DOCUMENTATION")
    return yaml.safe_load(text)["options"]


def documented_options(name):
    doc = documentation(name)
    options = dict(doc.get("options") or {})
    for reference in doc.get("extends_documentation_fragment") or []:
        if not reference.startswith("pgops.runbook."):
            continue
        for key, value in fragment(reference).items():
            assert key not in options, "%s documents %s, which the fragment %s already does" % (name, key, reference)
            options[key] = value
    return options


def normalised(option, documented):
    """The facts both sides state about an option, with Ansible's defaults filled in."""
    out = dict(type=option.get("type", "str"), default=option.get("default"), required=bool(option.get("required")),
               choices=option.get("choices"), elements=option.get("elements"),
               aliases=sorted(option.get("aliases") or []))
    nested = option.get("suboptions" if documented else "options")
    if nested:
        out["suboptions"] = dict((k, normalised(v, documented)) for k, v in nested.items())
    return out


@pytest.mark.parametrize("name", MODULES)
def test_argument_spec_matches_documentation(name, monkeypatch):
    spec = argument_spec_of(name, monkeypatch)[0]
    documented = documented_options(name)
    assert sorted(spec) == sorted(documented)
    for key in spec:
        assert normalised(spec[key], False) == normalised(documented[key], True), "option %s of %s" % (key, name)


@pytest.mark.parametrize("name", MODULES)
def test_check_mode_support_is_declared_as_documented(name, monkeypatch):
    kwargs = argument_spec_of(name, monkeypatch)[1]
    documented = documentation(name)["attributes"]["check_mode"]["support"]
    assert bool(kwargs.get("supports_check_mode")) == (documented in ("full", "partial"))


def test_secret_options_are_no_log(monkeypatch):
    spec = argument_spec_of("health_check", monkeypatch)[0]
    assert spec["login_password"].get("no_log") is True
    assert spec["dsn"].get("no_log") is True


# --- health_check's list of checks and thresholds ----------------------------------------------------

def checks_paragraph():
    paragraphs = [p for p in documentation("health_check")["description"] if p.startswith("Checks and their thresholds")]
    assert len(paragraphs) == 1
    text = re.sub(r"\s+", " ", paragraphs[0])
    return text.split(":", 1)[1]


def segments():
    """{check name: the text documenting it}, one segment per `C(name) (...)` entry."""
    found = {}
    for segment in re.split(r";\s*(?=C\()", checks_paragraph()):
        head = segment.split(" (", 1)[0]
        for name in re.findall(r"C\(([a-z_]+)\)", head):
            assert name not in found, "%s is documented twice" % name
            found[name] = segment
    return found


def doc_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def test_every_check_is_documented_and_every_documented_check_exists():
    assert sorted(segments()) == sorted(c.name for c in CHECKS)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.name)
def test_every_threshold_is_documented_with_its_default(check):
    segment = segments()[check.name]
    for key, default in check.thresholds.items():
        if default is None:
            assert re.search(r"\b%s\b[^;]*\bunset\b" % key, segment), "%s: %s unset in %r" % (check.name, key, segment)
        else:
            assert re.search(r"\b%s %s\b" % (key, re.escape(doc_value(default))), segment), \
                "%s: %s %s in %r" % (check.name, key, doc_value(default), segment)


def test_no_documented_threshold_is_unknown():
    thresholds = dict((c.name, c.thresholds) for c in CHECKS)
    documented = segments()
    for name, segment in documented.items():
        for key in re.findall(r"\b([a-z]+(?:_[a-z]+)+)(?=,? (?:\d|true\b|false\b|unset\b))", segment):
            shared = [n for n, s in documented.items() if s == segment]
            assert any(key in thresholds[n] for n in shared), "%s documents unknown threshold %s" % (name, key)


def test_opt_in_checks_are_documented_as_such():
    for check in CHECKS:
        assert ("opt-in" in segments()[check.name]) == check.opt_in, check.name


def test_the_action_group_holds_exactly_the_modules_taking_the_connection_options():
    # module_defaults: group/pgops.runbook.all: "{{ pgops_connection }}" must suit every member.
    import os
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "meta", "runtime.yml")) as handle:
        group = yaml.safe_load(handle)["action_groups"]["all"]
    connected = [name for name in MODULES if "login_host" in documented_options(name)]
    assert sorted(group) == sorted(connected)
