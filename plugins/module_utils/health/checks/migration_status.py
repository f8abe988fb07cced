# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""migration_status: the project's migrations (health_check's `migrations` option) against
what the database records, through the migrate engine's read-only status: conflicts
(a failed migration, drift, a migration the project no longer has) are critical,
pending migrations warn."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.health.check import CRITICAL, HealthCheck, Outcome, grade_above, worst
from ansible_collections.pgops.runbook.plugins.module_utils.migrate.engine import MigrateRequest, run_migrate


def unavailable(context):
    if not (context.options.get("migrations") or {}).get("project_dir"):
        return "no migrations project given (option migrations.project_dir)"
    return None


def evaluate(rows, thresholds, context):
    options = dict((k, v) for k, v in context.options["migrations"].items() if v is not None)
    try:
        request = MigrateRequest(state="status", **options)
        status = run_migrate(context.connection_settings, request)
    except PgopsError as exc:
        return Outcome(CRITICAL, "Cannot read the migration status: %s" % exc.message)
    pending, conflicts = status["pending"], status["conflicts"]
    details = dict(tool=status["tool"], current=status["current"], pending=[p["version"] for p in pending],
                   conflicts=conflicts)
    grades = [grade_above(len(pending), thresholds["warning_pending"], thresholds["critical_pending"])]
    if conflicts:
        grades.append(CRITICAL)
    grade = worst(grades)
    listed = " (%s)" % ", ".join(details["pending"][:5]) if pending else ""
    text = "%s migrations: at version %s, %d pending%s" % (status["tool"], status["current"], len(pending), listed)
    if conflicts:
        text += "; %d conflicts: %s" % (len(conflicts), " ".join(c["message"] for c in conflicts[:3]))
    return Outcome(grade, text + ".", len(pending), details)


CHECK = HealthCheck(
    name="migration_status",
    description="Pending, failed or conflicting schema migrations of the project in the migrations option, read with "
                "the migrate module's engine; conflicts are critical; skipped when no project is given.",
    evaluate=evaluate,
    thresholds=dict(warning_pending=1, critical_pending=20),
    unavailable=unavailable,
)
