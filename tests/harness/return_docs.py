"""Every key a pgops module returns is documented in its RETURN: checked on the real
task results the integration tests see (tests/harness/playbook.py calls it)."""

import ast
import functools
import os

import yaml

from tests.harness.collection import ROOT

COLLECTION = "pgops.runbook."
MODULES_DIR = os.path.join(ROOT, "plugins", "modules")

# Keys Ansible (or this harness) puts in a task result, which a module's RETURN does not
# document: the common return values (changed, failed, msg, invocation, diff, warnings,
# deprecations, ansible_facts); the conditional and retry keywords' keys (skipped,
# skip_reason, false_condition, failed_when_result, changed_when_result, attempts, and
# failed_when_suppressed_exception - the `exception` of a failure failed_when overrode);
# loop items' keys (item, ansible_loop_var, ansible_index_var); no_log's `censored`; the
# *_lines Ansible derives from a returned stdout / stderr (those two are not exempt); and
# the harness's `_task`. Keys starting with `_ansible` are Ansible's internal ones.
ANSIBLE_KEYS = frozenset([
    "changed", "failed", "msg", "invocation", "diff", "warnings", "deprecations", "ansible_facts",
    "skipped", "skip_reason", "false_condition", "failed_when_result", "changed_when_result", "failed_when_suppressed_exception",
    "attempts",
    "item", "ansible_loop_var", "ansible_index_var", "censored", "stdout_lines", "stderr_lines", "_task",
])

# AnsibleModule adds these stats of the file a result's `path` (else `dest`) names, when
# it exists (AnsibleModule.add_path_info): Ansible's own, exempt in results with either key.
PATH_INFO_KEYS = frozenset(["uid", "gid", "owner", "group", "mode", "state", "size", "secontext"])

# With `until`, Ansible adds `retries` (the keyword's value) beside `attempts`; exempt only
# then, as migrate returns a `retries` of its own.
UNTIL_KEYS = frozenset(["retries"])

# Only in a failed result: Ansible's report of a module that crashed or did not return JSON
# (module_stdout, module_stderr, rc) and the traceback of an unexpected error (exception).
# In a successful result these keys would be the module's own and must be documented.
ANSIBLE_FAILURE_KEYS = frozenset(["exception", "module_stdout", "module_stderr", "rc"])

# A key present in a failed result must be documented, and not as returned on success only:
# RETURN's `returned:` says `always`, `on failure`, `when ...` for those. A result whose
# failure was decided by failed_when is not judged on that, as the module's own verdict is lost.
SUCCESS_ONLY = frozenset(["success", "on success"])


@functools.lru_cache(maxsize=None)
def module_names():
    """The collection's module names (plugins/modules/*.py)."""
    return frozenset(os.path.splitext(name)[0] for name in os.listdir(MODULES_DIR)
                     if name.endswith(".py") and not name.startswith("_"))


@functools.lru_cache(maxsize=None)
def documented_returns(module):
    """{key: its RETURN entry} for plugins/modules/<module>.py, read without importing it."""
    with open(os.path.join(MODULES_DIR, module + ".py")) as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "RETURN" for t in node.targets):
            return yaml.safe_load(node.value.value) or {}
    raise AssertionError("plugins/modules/%s.py has no RETURN" % module)


def pgops_module(event_data):
    """The pgops module a task event ran (`backup` for pgops.runbook.backup), or None."""
    resolved = event_data.get("resolved_action") or ""
    action = event_data.get("task_action") or ""
    for name in (resolved, action):
        if name.startswith(COLLECTION) and name[len(COLLECTION):] in module_names():
            return name[len(COLLECTION):]
    # The short name, as a play with `collections: [pgops.runbook]` may write it.
    if action in module_names() and resolved in ("", action, COLLECTION + action):
        return action
    return None


def result_problems(module, result):
    """What in one task result (or loop item) of `module` its RETURN does not document."""
    documented = documented_returns(module)
    failed = bool(result.get("failed"))
    judged_on_failure = failed and "failed_when_result" not in result
    ansibles = set(ANSIBLE_KEYS)
    if failed:
        ansibles.update(ANSIBLE_FAILURE_KEYS)
    if result.get("path") is not None or result.get("dest") is not None:
        ansibles.update(PATH_INFO_KEYS)
    if "attempts" in result:
        ansibles.update(UNTIL_KEYS)
    problems = []
    for key in sorted(result):
        if key in ansibles or key.startswith("_ansible"):
            continue
        if key not in documented:
            problems.append(key)
        elif judged_on_failure and str((documented[key] or {}).get("returned", "")).strip().lower() in SUCCESS_ONLY:
            problems.append("%s (in a failed result, documented as returned on success only)" % key)
    return problems


def results_of(res):
    """The module results in one task's `res`: its loop items, or itself."""
    items = res.get("results")
    if isinstance(items, list) and items and all(isinstance(i, dict) and "ansible_loop_var" in i for i in items):
        return items
    return [res]


def undocumented_in_events(events):
    """[(module, task name, [problem, ...])] for every pgops module result in ansible-runner `events`."""
    found = []
    for event in events:
        if event.get("event") not in ("runner_on_ok", "runner_on_failed"):
            continue
        data = event.get("event_data") or {}
        module = pgops_module(data)
        if module is None:
            continue
        res = dict(data.get("res") or {})
        res.setdefault("failed", event["event"] == "runner_on_failed")
        for result in results_of(res):
            problems = result_problems(module, result)
            if problems:
                found.append((module, data.get("task"), problems))
    return found


def assert_returns_documented(events):
    """Fail when a pgops module returned a key its RETURN does not document (see result_problems)."""
    found = undocumented_in_events(events)
    if found:
        raise AssertionError("Return values missing from the modules' RETURN:\n" + "\n".join(
            "  %s%s (task %r): %s" % (COLLECTION, module, task, ", ".join(problems)) for module, task, problems in found))
