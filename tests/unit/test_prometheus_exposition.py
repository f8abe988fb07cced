"""The metrics file for node_exporter's textfile collector must be valid Prometheus
text exposition format, whatever the database is called and whatever a check measured."""

import re

from ansible_collections.pgops.runbook.plugins.module_utils.health.engine import summarize
from ansible_collections.pgops.runbook.plugins.module_utils.health.prometheus import exposition

SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.eE+-]+$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
ODD_NAME = 'we"ird\\db\nname'


def unescape(value):
    return re.sub(r'\\(.)', lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], value)


def labels_of(line):
    body = line[line.index("{") + 1:line.rindex("}")]
    found, position = {}, 0
    while position < len(body):
        match = LABEL.match(body, position)
        assert match, "unparsable labels in %r" % line
        found[match.group(1)] = unescape(match.group(2))
        position = match.end()
    return found


def result(database="appdb"):
    checks = [
        dict(name="connection", status="ok", value=12.5),
        dict(name="server_version", status="warning", value=14),
        dict(name="disk_space", status="skipped", value=None),
        dict(name="archiver", status="critical", value=True),
        dict(name="security", status="ok", value="n/a"),
        dict(name="replication_slots", status="ok", value=10 * 1024 ** 3),
        dict(name="deadlocks", status="ok", value=-0.5),
    ]
    return dict(database=database, checks=checks, summary=summarize(checks), statements=27)


def parse(text):
    """(metric name -> list of (labels, value)), checking the file's shape on the way."""
    assert text.endswith("\n")
    declared, metrics, order = {}, {}, []
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, name = line.split(" ", 3)[1:3]
            assert name not in metrics, "%s for %s after its samples" % (kind, name)
            declared.setdefault(name, []).append(kind)
            continue
        assert SAMPLE.match(line), "not a sample line: %r" % line
        name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
        assert declared.get(name) == ["HELP", "TYPE"], "%s has no HELP and TYPE before its samples" % name
        if name not in metrics:
            order.append(name)
            metrics[name] = []
        assert order[-1] == name, "samples of %s are not grouped together" % name
        metrics[name].append((labels_of(line) if "{" in line else {}, float(line.rsplit(" ", 1)[1])))
    return metrics


def test_every_line_is_valid_exposition():
    metrics = parse(exposition(result(), 1764032400.25))
    assert sorted(metrics) == sorted(["pgops_health_check_status", "pgops_health_check_value", "pgops_health_checks",
                                      "pgops_health_last_run_timestamp_seconds", "pgops_health_statements"])


def test_status_codes_per_check():
    metrics = parse(exposition(result(), 0))
    statuses = dict((labels["check"], value) for labels, value in metrics["pgops_health_check_status"])
    assert statuses == dict(connection=0, server_version=1, disk_space=-1, archiver=2, security=0,
                            replication_slots=0, deadlocks=0)


def test_only_numeric_values_are_exported():
    metrics = parse(exposition(result(), 0))
    values = dict((labels["check"], value) for labels, value in metrics["pgops_health_check_value"])
    assert values == dict(connection=12.5, server_version=14.0, replication_slots=float(10 * 1024 ** 3),
                          deadlocks=-0.5)


def test_summary_timestamp_and_statements():
    metrics = parse(exposition(result(), 1764032400.25))
    counts = dict((labels["status"], value) for labels, value in metrics["pgops_health_checks"])
    assert counts == dict(ok=4, warning=1, critical=1, skipped=1)
    assert metrics["pgops_health_last_run_timestamp_seconds"] == [(dict(database="appdb"), 1764032400.25)]
    assert metrics["pgops_health_statements"] == [(dict(database="appdb"), 27.0)]


def test_label_values_are_escaped():
    text = exposition(result(ODD_NAME), 0)
    assert 'database="we\\"ird\\\\db\\nname"' in text
    metrics = parse(text)
    for samples in metrics.values():
        for labels, dummy in samples:
            assert labels["database"] == ODD_NAME
