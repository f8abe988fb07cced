# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Django migrations, run with the project's own manage.py in the application's Python.

Versions are `<app>.<migration name>` (clinic.0002_providers_and_patients) in the order
of Django's plan (what `manage.py showmigrations --plan` lists); a target may also be
given by a unique prefix (clinic.0002), or without its app when only one app has it.
The state comes from django_migrations through Django's MigrationLoader, read by a
small inspection run as `manage.py shell` (its code is passed in the environment, the
database only through the environment: DATABASE_URL and PGOPTIONS, never a command
line). It also renders each pending migration's SQL with `sqlmigrate` (`--backwards`
for a downgrade) and finds the conflicts that refuse a run: two leaf migrations in an
app (`conflicting_leaves`), a migration recorded as applied that the project no longer
has (`missing`), and one applied before its dependency (`inconsistent`).

Each migration is applied by its own `manage.py migrate --noinput <app> <name>`, and
undone by `manage.py migrate --noinput <app> <previous name>` (or `zero`), so that the
result lists each one with its duration and a lock timeout is retried per migration.
With several apps the project moves along the plan: going to a target applies what
is pending up to it and undoes (with allow_downgrade) what is applied after it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import sys
import time

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.migrate.external import ExternalTool, tail
from ansible_collections.pgops.runbook.plugins.module_utils.migrate.model import Conflict, Migration, MigrationFailed, Status

NAME = "django"
LOCK_CLASS = 0x70676F6D  # ASCII "pgom", as every migrate tool
MARKER = "manage.py"
RESULT_PREFIX = "PGOPS-DJANGO-RESULT "
SNIPPET_ENV = "PGOPS_DJANGO_SNIPPET"
REQUEST_ENV = "PGOPS_DJANGO_REQUEST"
# What `manage.py shell -c` runs: the inspection itself comes from the environment (no secret in either).
BOOTSTRAP = "import os; exec(compile(os.environ['%s'], '<pgops-django-inspect>', 'exec'), {'__name__': '__pgops__'})" % SNIPPET_ENV

# Run in the application's Python by `manage.py shell` (Django set up with the project's settings).
# Plain Python 3 that any Django 2.2+ accepts; prints one line: RESULT_PREFIX + JSON.
INSPECT = r'''
import json
import os
import sys
import traceback


def pgops_where(exc):
    """project-relative file and line of the innermost frame in the project, or ''."""
    cwd = os.getcwd() + os.sep
    if isinstance(exc, SyntaxError) and exc.filename:
        name = exc.filename[len(cwd):] if exc.filename.startswith(cwd) else exc.filename
        return "%s line %s" % (name, exc.lineno)
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.startswith(cwd) and "site-packages" not in frame.filename:
            return "%s line %s" % (frame.filename[len(cwd):], frame.lineno)
    return ""


def pgops_sql(call_command, app, name, backwards):
    from io import StringIO
    buf = StringIO()
    try:
        call_command("sqlmigrate", app, name, backwards=backwards, stdout=buf, no_color=True)
    except BaseException as exc:
        return "-- sqlmigrate %s %s%s could not render this migration: %s" % (
            app, name, " --backwards" if backwards else "", (str(exc).strip().splitlines() or [type(exc).__name__])[0])
    return buf.getvalue()


def pgops_inspect(request):
    import django
    from django.core.management import call_command
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.recorder import MigrationRecorder

    out = {"django": django.get_version()}
    connection = connections[DEFAULT_DB_ALIAS]
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    graph = loader.graph
    plan, seen = [], set()
    for leaf in sorted(graph.leaf_nodes()):
        for key in graph.forwards_plan(leaf):
            if key not in seen:
                seen.add(key)
                plan.append(key)
    applied = set(loader.applied_migrations)
    recorder = MigrationRecorder(connection)
    rows = []
    if recorder.has_table():
        rows = [(r[0], r[1], r[2]) for r in recorder.migration_qs.order_by("id").values_list("id", "app", "name")]
    rank = dict(((app, name), row_id) for row_id, app, name in rows)
    replaced = set()
    for key, squash in loader.replacements.items():
        replaced.update(tuple(k) for k in squash.replaces)
        if key not in rank and squash.replaces:
            rank[key] = max(rank.get(tuple(k), 0) for k in squash.replaces)
    cwd = os.getcwd() + os.sep
    nodes = []
    for key in plan:
        migration = graph.nodes[key]
        module = sys.modules.get(type(migration).__module__)
        path = getattr(module, "__file__", None) or ""
        nodes.append({
            "app": key[0], "name": key[1],
            "parents": sorted([list(p.key) for p in graph.node_map[key].parents]),
            "atomic": bool(getattr(migration, "atomic", True)),
            "path": path[len(cwd):] if path.startswith(cwd) else path,
            "applied": key in applied,
        })
    out["nodes"] = nodes
    out["applied"] = [list(k) for k in sorted((k for k in applied if k in graph.nodes), key=lambda k: (rank.get(k, 0), k))]
    conflicts = []
    for app, names in sorted(loader.detect_conflicts().items()):
        conflicts.append({"kind": "conflicting_leaves", "app": app, "names": sorted(names)})
    project_apps = set(loader.migrated_apps) | set(getattr(loader, "unmigrated_apps", ()))
    known = set(graph.nodes) | set(loader.disk_migrations) | replaced
    for row_id, app, name in rows:
        if app in project_apps and (app, name) not in known:
            conflicts.append({"kind": "missing", "app": app, "name": name})
    for key in plan:
        if key not in applied:
            continue
        for parent in sorted(p.key for p in graph.node_map[key].parents):
            if parent in applied:
                continue
            if parent in loader.replacements and all(tuple(k) in applied for k in loader.replacements[parent].replaces):
                continue
            conflicts.append({"kind": "inconsistent", "app": key[0], "name": key[1], "parent": list(parent)})
    out["conflicts"] = conflicts
    wanted = request.get("sql") or []
    if request.get("pending_sql"):
        wanted = [[n["app"], n["name"], False] for n in nodes if not n["applied"]]
    out["sql"] = [[app, name, bool(backwards), pgops_sql(call_command, app, name, bool(backwards))]
                  for app, name, backwards in wanted]
    return out


def pgops_main():
    try:
        out = pgops_inspect(json.loads(os.environ.get("PGOPS_DJANGO_REQUEST") or "{}"))
    except BaseException as exc:
        text = (str(exc).strip().splitlines() or [""])[0]
        if isinstance(exc, SyntaxError):
            text = exc.msg
        out = {"error": "%s%s" % (type(exc).__name__, ": " + text if text else ""), "where": pgops_where(exc)}
    sys.stdout.write("\n" + RESULT_PREFIX + json.dumps(out) + "\n")
    sys.stdout.flush()


RESULT_PREFIX = "@RESULT_PREFIX@"
pgops_main()
'''.replace("@RESULT_PREFIX@", RESULT_PREFIX)


class DjangoMigration(Migration):
    """A migration of the Django project; `app`, `migration` (its name), `parents` [(app, name)]."""

    def __init__(self, node):
        Migration.__init__(self, "%s.%s" % (node["app"], node["name"]), node["name"], path=node["path"] or None)
        self.app = node["app"]
        self.migration = node["name"]
        self.parents = [tuple(p) for p in node["parents"]]
        self.transactional = node["atomic"]
        self.key = (self.app, self.migration)


class Tool(ExternalTool):
    """The Django adapter: state and plan from Django's MigrationLoader, one `manage.py migrate` per migration."""

    name = NAME

    def __init__(self, request, session):
        if not os.path.isfile(os.path.join(request.project_dir, MARKER)):
            raise PgopsError("Option project_dir: %s holds no manage.py (the Django project's root has one)." % request.project_dir)
        if request.migrations_dir:
            raise PgopsError("Option migrations_dir does not apply to Django: its migrations are found through the project's "
                             "INSTALLED_APPS (and MIGRATION_MODULES) settings.")
        ExternalTool.__init__(self, request, session)
        self.python = request.executable or sys.executable
        self.env[SNIPPET_ENV] = INSPECT
        self.known = []
        self.by_key = {}
        self.position = {}
        self.applied_keys = set()
        self.loaded = False

    @staticmethod
    def lock_key(database):
        return (LOCK_CLASS, "django|%s" % database)

    # -- running Django ---------------------------------------------------------------------

    def _manage(self, *args):
        return [self.python, MARKER] + list(args)

    def _inspect(self, pending_sql=False, sql=None):
        """The inspection's result dict; PgopsError with one sentence when Django cannot load the project."""
        self.env[REQUEST_ENV] = json.dumps(dict(pending_sql=pending_sql, sql=sql or []))
        argv = self._manage("shell", "--verbosity", "0", "--command", BOOTSTRAP)
        code, stdout, stderr = self.run(argv, "manage.py shell (reading Django's migration state)", check=False)
        lines = [line for line in stdout.splitlines() if line.startswith(RESULT_PREFIX)]
        if not lines:
            raise self._tool_error(code, stdout, stderr, "reading the migration state with manage.py shell")
        try:
            out = json.loads(lines[-1][len(RESULT_PREFIX):])
        except ValueError:
            raise PgopsError("manage.py shell printed an unreadable migration state: %s" % tail(lines[-1], 300))
        if out.get("error"):
            where = " (%s)" % out["where"] if out.get("where") else ""
            raise PgopsError("Django could not load the project's migrations: %s%s." % (out["error"].rstrip("."), where))
        return out

    def _tool_error(self, code, stdout, stderr, what):
        text = stderr + "\n" + stdout
        if "No module named 'django'" in text or "Couldn't import Django" in text:
            return MigrationFailed("Option executable: %s cannot import Django; it must be the Python of the application's "
                                   "environment (its virtualenv's bin/python)." % self.python)
        if code == 0:
            return MigrationFailed("Option executable: %s ran manage.py shell but it printed no migration state; is it a Python "
                                   "with Django? (output: %s)" % (self.python, tail(text, 300)))
        return MigrationFailed("%s failed (exit status %d): %s" % (what[0].upper() + what[1:], code, tail(stderr or stdout)))

    # -- state --------------------------------------------------------------------------

    def _load(self, out):
        self.known = [DjangoMigration(node) for node in out["nodes"]]
        self.by_key = dict((m.key, m) for m in self.known)
        self.position = dict((m.key, index) for index, m in enumerate(self.known))
        self.applied_keys = set(tuple(k) for k in out["applied"])
        self.loaded = True

    def status(self):
        out = self._inspect(pending_sql=True)
        self._load(out)
        sql = dict(((app, name), text) for app, name, dummy, text in out["sql"])
        for migration in self.known:
            migration.sql = sql.get(migration.key)
        applied = [m for m in self.known if m.key in self.applied_keys]
        current = max(applied, key=lambda m: self.position[m.key]).version if applied else None
        pending = [m for m in self.known if m.key not in self.applied_keys]
        conflicts = [self._conflict(c) for c in out["conflicts"]]
        order = [tuple(k) for k in out["applied"]]
        return Status(current, ["%s.%s" % k for k in order], pending, conflicts, known=list(self.known))

    @staticmethod
    def _conflict(item):
        app = item["app"]
        if item["kind"] == "conflicting_leaves":
            names = ["%s.%s" % (app, n) for n in item["names"]]
            return Conflict("conflicting_leaves", ", ".join(names),
                            "App %s has conflicting leaf migrations %s (more than one latest migration): merge them with "
                            "manage.py makemigrations --merge." % (app, " and ".join(names)))
        version = "%s.%s" % (app, item["name"])
        if item["kind"] == "missing":
            return Conflict("missing", version, "Migration %s is recorded as applied in django_migrations but the project "
                                                "no longer has it." % version)
        return Conflict("inconsistent", version, "Migration %s is applied but its dependency %s.%s is not." % (
            version, item["parent"][0], item["parent"][1]))

    def _ensure_loaded(self):
        if not self.loaded:
            self._load(self._inspect())

    def find(self, version):
        """The migration `version` names: app.name, app.<unique prefix>, or a name (prefix) only one app has."""
        self._ensure_loaded()
        text = str(version).strip()
        app, dot, name = text.partition(".")
        if dot and app and name:
            exact = self.by_key.get((app, name))
            if exact is not None:
                return exact
            matches = [m for m in self.known if m.app == app and m.migration.startswith(name)]
        else:
            matches = [m for m in self.known if m.migration == text] or [m for m in self.known if m.migration.startswith(text)]
        if len(matches) > 1:
            raise PgopsError("Option target: %s matches more than one migration (%s); give more of its name." % (
                text, ", ".join(m.version for m in matches)))
        return matches[0] if matches else None

    def _resolve(self, version):
        migration = self.find(version)
        if migration is None:
            raise PgopsError("Option target: version %s is not a migration of the project." % version)
        return migration

    def compare(self, a, b):
        pa, pb = self.position[self._resolve(a).key], self.position[self._resolve(b).key]
        return (pa > pb) - (pa < pb)

    def upgrade_plan(self, status, target):
        """Pending migrations in plan order, up to and including `target` (None: all)."""
        if target is None:
            return list(status.pending)
        limit = self.position[self._resolve(target).key]
        return [m for m in status.pending if self.position[m.key] <= limit]

    def downgrade_plan(self, status, target):
        """Applied migrations after `target` in plan order, newest first, each with the name Django's migrate
        goes back to for it and its backwards SQL."""
        limit = self.position[self._resolve(target).key]
        remaining = set(self.applied_keys)
        plan = []
        for migration in sorted((m for m in self.known if m.key in remaining), key=lambda m: -self.position[m.key]):
            if self.position[migration.key] <= limit:
                break
            undo = DjangoMigration(dict(app=migration.app, name=migration.migration, parents=migration.parents,
                                        atomic=migration.transactional, path=migration.path or ""))
            undo.back_to = self._back_to(migration, remaining)
            remaining.discard(migration.key)
            plan.append(undo)
        if plan:
            out = self._inspect(sql=[[m.app, m.migration, True] for m in plan])
            sql = dict(((app, name), text) for app, name, dummy, text in out["sql"])
            for migration in plan:
                migration.sql = sql.get(migration.key)
        return plan

    def _descendants(self, roots):
        children = {}
        for migration in self.known:
            for parent in migration.parents:
                children.setdefault(parent, set()).add(migration.key)
        seen, todo = set(), list(roots)
        while todo:
            key = todo.pop()
            if key not in seen:
                seen.add(key)
                todo.extend(children.get(key, ()))
        return seen

    def _back_to(self, migration, applied):
        """The name `manage.py migrate <app> <name>` must be given to undo `migration` alone (an applied
        parent in its app, or zero); PgopsError when Django's command line cannot undo it alone."""
        in_app = [p for p in migration.parents if p[0] == migration.app]
        candidates = []
        for parent in sorted(in_app):
            children = [m.key for m in self.known if parent in m.parents and m.app == migration.app]
            candidates.append((parent[1], children))
        if not in_app:
            roots = [m.key for m in self.known if m.app == migration.app and not [p for p in m.parents if p[0] == m.app]]
            candidates.append(("zero", roots))
        for name, starts in candidates:
            if self._descendants(starts) & applied == set([migration.key]):
                return name
        raise PgopsError("Option target: Django's migrate cannot undo %s alone (going back to %s would undo other applied "
                         "migrations of %s too); choose a target Django can reach." % (
                             migration.version, " or ".join("%s.%s" % (migration.app, c[0]) for c in candidates),
                             migration.app))

    # -- applying -----------------------------------------------------------------------

    def apply(self, migration, undo=False):
        """Apply (or undo) one migration with manage.py migrate; returns the seconds it took."""
        if undo:
            back_to = getattr(migration, "back_to", None) or self._back_to(migration, set(self.applied_keys))
            argv = self._manage("migrate", "--noinput", migration.app, back_to)
        else:
            argv = self._manage("migrate", "--noinput", migration.app, migration.migration)
        label = "%s.%s" % (migration.app, migration.migration)
        what = "manage.py migrate %s %s" % (migration.app, argv[-1])
        started = time.monotonic()
        try:
            if migration.transactional:
                self.run_with_retries(argv, what, label)
            else:  # a non-atomic migration may have done part of its work: running it again is not safe
                self.run(argv, what)
        except MigrationFailed as exc:
            raise self._explain(exc, what, label)
        seconds = time.monotonic() - started
        if undo:
            self.applied_keys.discard(migration.key)
        else:
            self.applied_keys.add(migration.key)
        return seconds

    def _explain(self, exc, what, label):
        """The failure in one sentence, with what it means for the run's timeouts."""
        message = exc.message.rstrip(".")
        if message.startswith(what + " failed (exit status "):
            message = "%s exited with status %s" % (what, message[len(what + " failed (exit status "):].replace(")", "", 1))
        if "No module named 'django'" in message or "Couldn't import Django" in message:
            return MigrationFailed("Option executable: %s cannot import Django; it must be the Python of the application's "
                                   "environment (its virtualenv's bin/python)." % self.python)
        if exc.lock_timeout:
            attempts = 1 + len([r for r in self.session.retries if r.get("migration") == label])
            message += " (it waited lock_timeout %gs for a lock another session holds, %d time%s)" % (
                self.request.lock_timeout or 0, attempts, "" if attempts == 1 else "s")
        elif "statement timeout" in message:
            message += " (statement_timeout %gs)" % (self.request.statement_timeout or 0)
        return MigrationFailed(message, lock_timeout=exc.lock_timeout, details=exc.details)
