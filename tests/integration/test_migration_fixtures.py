"""The migration fixtures (tests/fixtures/migrations) with the real tools.

Four projects build the same healthcare schema: plain SQL files in Flyway naming
(applied here with psql), Alembic, Django and Prisma (the real CLI, in
JavaScript-engine mode). These tests prove the fixtures themselves before any
runner of ours uses them: every project reaches the final schema, the four final
schemas are identical (catalog descriptions compared, each tool's history table
left out), every project goes down to version 2 -- where the four schemas are
identical too -- and up again, and Prisma reports the database up to date.

Each test gets fresh databases owned by pgops_app (no superuser needed by any
migration). Connection settings reach the tools through the environment only.
The tools are installed once under .build (tests/harness/migration_tools.py).
"""

import glob
import os
import re
import subprocess
from urllib.parse import quote

import pytest

from tests.harness.migration_tools import (
    FIXTURES,
    alembic_python,
    django_python,
    prisma_cli,
    prisma_environment,
)
from tests.harness.processes import command_lines_seen

pytestmark = pytest.mark.integration

TOOLS = ("sql", "alembic", "django", "prisma")
OWNER = "pgops_app"
SQL_DIR = os.path.join(FIXTURES, "sql")
ALEMBIC_DIR = os.path.join(FIXTURES, "alembic")
DJANGO_DIR = os.path.join(FIXTURES, "django")
PRISMA_DIR = os.path.join(FIXTURES, "prisma")
PRISMA_MIGRATIONS = os.path.join(PRISMA_DIR, "prisma", "migrations")
# Each tool's own bookkeeping, left out of the schema comparison.
HISTORY_TABLES = {"alembic_version", "django_migrations", "_prisma_migrations", "flyway_schema_history"}
COMMAND_TIMEOUT = 120


def _columns(*specs):
    """(name, type, not null, default) -> description tuples; `id` is the identity key."""
    return [("id", "bigint", True, None, "d")] + [spec + ("",) for spec in specs]


TSTZ = "timestamp with time zone"
# The final schema, as describe() reports it (README.md shows the same in SQL).
FINAL_TABLES = {
    "users": {
        "columns": _columns(("email", "text", True, None), ("password_hash", "text", True, None),
                            ("created_at", TSTZ, True, "now()")),
        "constraints": {"users_pkey": "PRIMARY KEY (id)", "users_email_key": "UNIQUE (email)"},
        "indexes": ["users_email_key", "users_pkey"],
    },
    "plans": {
        "columns": _columns(("name", "text", True, None), ("price_cents", "integer", True, None),
                            ("interval", "text", True, None)),
        "constraints": {"plans_pkey": "PRIMARY KEY (id)", "plans_name_key": "UNIQUE (name)"},
        "indexes": ["plans_name_key", "plans_pkey"],
    },
    "providers": {
        "columns": _columns(("user_id", "bigint", True, None), ("npi", "character varying(10)", True, None),
                            ("specialty", "text", True, None)),
        "constraints": {"providers_pkey": "PRIMARY KEY (id)", "providers_npi_key": "UNIQUE (npi)",
                        "providers_user_id_fkey": "FOREIGN KEY (user_id) REFERENCES users(id)"},
        "indexes": ["providers_npi_key", "providers_pkey"],
    },
    "patients": {
        "columns": _columns(("user_id", "bigint", False, None), ("first_name", "text", True, None),
                            ("last_name", "text", True, None), ("date_of_birth", "date", True, None),
                            ("mrn", "text", True, None)),
        "constraints": {"patients_pkey": "PRIMARY KEY (id)", "patients_mrn_key": "UNIQUE (mrn)",
                        "patients_user_id_fkey": "FOREIGN KEY (user_id) REFERENCES users(id)"},
        "indexes": ["patients_mrn_key", "patients_pkey"],
    },
    "appointments": {
        "columns": _columns(("patient_id", "bigint", True, None), ("provider_id", "bigint", True, None),
                            ("starts_at", TSTZ, True, None), ("ends_at", TSTZ, True, None),
                            ("status", "text", True, "'scheduled'::text")),
        "constraints": {"appointments_pkey": "PRIMARY KEY (id)",
                        "appointments_patient_id_fkey": "FOREIGN KEY (patient_id) REFERENCES patients(id)",
                        "appointments_provider_id_fkey": "FOREIGN KEY (provider_id) REFERENCES providers(id)"},
        "indexes": ["appointments_pkey", "appointments_provider_id_starts_at_idx"],
    },
    "subscriptions": {
        "columns": _columns(("user_id", "bigint", True, None), ("plan_id", "bigint", True, None),
                            ("status", "text", True, None), ("started_at", TSTZ, True, "now()"),
                            ("ends_at", TSTZ, False, None)),
        "constraints": {"subscriptions_pkey": "PRIMARY KEY (id)",
                        "subscriptions_user_id_fkey": "FOREIGN KEY (user_id) REFERENCES users(id)",
                        "subscriptions_plan_id_fkey": "FOREIGN KEY (plan_id) REFERENCES plans(id)"},
        "indexes": ["subscriptions_pkey"],
    },
}
AGENDA_INDEX = ("CREATE INDEX appointments_provider_id_starts_at_idx ON public.appointments "
                "USING btree (provider_id, starts_at)")
VIEWS = {"upcoming_appointments"}
VERSION_2_TABLES = {"users", "plans", "providers", "patients"}

CATALOG_QUERIES = {
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
        ORDER BY c.relname, a.attnum""",
    "constraints": """
        SELECT c.relname, k.conname, pg_get_constraintdef(k.oid, true)
        FROM pg_constraint k
        JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public'""",
    "indexes": """
        SELECT t.relname, i.relname, pg_get_indexdef(i.oid)
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = 'public'""",
    "views": """
        SELECT c.relname, c.relkind, pg_get_viewdef(c.oid, true)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('v', 'm')""",
    "sequences": """
        SELECT s.relname, format_type(q.seqtypid, NULL), q.seqstart, q.seqincrement, q.seqmin, q.seqmax,
               q.seqcache, q.seqcycle, t.relname, a.attname, dep.deptype
        FROM pg_class s
        JOIN pg_namespace n ON n.oid = s.relnamespace
        JOIN pg_sequence q ON q.seqrelid = s.oid
        LEFT JOIN pg_depend dep ON dep.classid = 'pg_class'::regclass AND dep.objid = s.oid
             AND dep.refclassid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i')
        LEFT JOIN pg_class t ON t.oid = dep.refobjid
        LEFT JOIN pg_attribute a ON a.attrelid = dep.refobjid AND a.attnum = dep.refobjsubid
        WHERE n.nspname = 'public' AND s.relkind = 'S'""",
    # Anything else a migration could leave behind: functions, types, other relations.
    "other": """
        SELECT 'function', p.oid::regprocedure::text FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace
        UNION ALL
        SELECT 'type', t.typname FROM pg_type t
        WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e', 'd', 'r', 'm')
        UNION ALL
        SELECT 'relation ' || c.relkind::text, c.relname FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind NOT IN ('r', 'p', 'i', 'v', 'm', 'S')""",
}


# ---------------------------------------------------------------------------
# Databases and catalog descriptions


class Database:
    """A fresh database owned by pgops_app, reached over TCP with a password."""

    def __init__(self, cluster, pg, name):
        self.cluster = cluster
        self.name = name
        self.host = pg["host"]
        self.port = pg["port"]
        self.password = pg["passwords"][OWNER]

    @property
    def url(self):
        password = quote(self.password, safe="")
        return "postgresql://%s:%s@%s:%d/%s" % (OWNER, password, self.host, self.port, self.name)

    def env(self, **extra):
        """The environment of a tool run: libpq variables and DATABASE_URL, never argv."""
        env = dict(os.environ, PGHOST=self.host, PGPORT=str(self.port), PGUSER=OWNER, PGDATABASE=self.name,
                   PGPASSWORD=self.password, DATABASE_URL=self.url, PYTHONDONTWRITEBYTECODE="1")
        env.update(extra)
        return env

    def query(self, sql):
        return self.cluster.primary.execute(sql, dbname=self.name) or []

    def tables(self):
        return {row[0] for row in self.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


@pytest.fixture
def new_database(cluster, pg, request):
    """Factory of fresh databases, dropped when the test ends."""
    made = []

    def make(label):
        name = re.sub(r"[^a-z0-9_]", "_", ("mig_%s_%s_%d" % (label, request.node.name, len(made))).lower())[:63]
        cluster.primary.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
        cluster.primary.execute("CREATE DATABASE %s OWNER %s" % (name, OWNER))
        made.append(name)
        return Database(cluster, pg, name)

    yield make
    for name in made:
        cluster.primary.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)


def describe(db):
    """A normalised description of the public schema, without the tools' history tables."""
    found = {key: db.query(sql) for key, sql in CATALOG_QUERIES.items()}
    tables = {}
    for table, column, typ, not_null, default, identity, generated in found["columns"]:
        if table not in HISTORY_TABLES:
            entry = tables.setdefault(table, {"columns": [], "constraints": {}, "indexes": {}})
            entry["columns"].append((column, typ, not_null, default, identity + generated))
    for table, name, definition in found["constraints"]:
        if table not in HISTORY_TABLES:
            tables[table]["constraints"][name] = definition
    for table, name, definition in found["indexes"]:
        if table not in HISTORY_TABLES:
            tables[table]["indexes"][name] = definition
    sequences = {row[0]: row[1:] for row in found["sequences"] if row[8] not in HISTORY_TABLES}
    return {
        "tables": tables,
        "views": {name: (kind, definition) for name, kind, definition in found["views"]},
        "sequences": sequences,
        "other": sorted(found["other"]),
    }


def version_2_of(description):
    """The part of a final description that version 2 must have: its four tables, no view."""
    return {
        "tables": {name: value for name, value in description["tables"].items() if name in VERSION_2_TABLES},
        "views": {},
        "sequences": {name: value for name, value in description["sequences"].items()
                      if value[7] in VERSION_2_TABLES},
        "other": description["other"],
    }


# ---------------------------------------------------------------------------
# Running the tools


def run(argv, env, cwd=None, check=True):
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
                          check=False)
    if check and proc.returncode != 0:
        pytest.fail("%s exited %d\nstdout:\n%s\nstderr:\n%s"
                    % (" ".join(argv[:6]), proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    return proc


def psql(db, *args):
    return run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1"] + list(args), env=db.env())


def sql_version(path):
    return int(re.match(r"[VU](\d+)__", os.path.basename(path)).group(1))


def sql_files(prefix):
    """V or U files by version number (V10 after V9), or the repeatable ones."""
    paths = glob.glob(os.path.join(SQL_DIR, prefix + "*.sql"))
    return sorted(paths) if prefix == "R__" else sorted(paths, key=sql_version)


def prisma_migrations():
    return sorted(name for name in os.listdir(PRISMA_MIGRATIONS)
                  if os.path.isdir(os.path.join(PRISMA_MIGRATIONS, name)))


def prisma(db, *args):
    return run(prisma_cli() + list(args), env=db.env(**prisma_environment(db.url, inherit=False)),
               cwd=PRISMA_DIR)


def alembic(db, *args):
    return run([alembic_python(), "-m", "alembic", "-c", os.path.join(ALEMBIC_DIR, "alembic.ini")] + list(args),
               env=db.env(), cwd=ALEMBIC_DIR)


def django(db, *args):
    return run([django_python(), "manage.py"] + list(args), env=db.env(), cwd=DJANGO_DIR)


def upgrade(tool, db, from_version=0):
    """Migrate to the latest version (from `from_version`, for the SQL files)."""
    if tool == "sql":
        # A Flyway-style run: pending versioned files in order, then the repeatable ones.
        for path in sql_files("V"):
            if sql_version(path) > from_version:
                psql(db, "-f", path)
        for path in sql_files("R__"):
            psql(db, "-f", path)
    elif tool == "alembic":
        alembic(db, "upgrade", "head")
    elif tool == "django":
        django(db, "migrate", "clinic", "--no-input")
    else:
        out = prisma(db, "migrate", "deploy").stdout
        assert "All migrations have been successfully applied" in out or "No pending migrations" in out, out


def downgrade_to_2(tool, db):
    if tool == "sql":
        for path in reversed(sql_files("U")):
            if sql_version(path) > 2:
                psql(db, "-f", path)
    elif tool == "alembic":
        alembic(db, "downgrade", "0002")
    elif tool == "django":
        django(db, "migrate", "clinic", "0002", "--no-input")
    else:
        # Prisma has no down migrations: down.sql reverts one by hand. `migrate resolve
        # --rolled-back` only accepts a failed migration, so the same transaction as
        # down.sql marks the migration's row unfinished; resolve then records the
        # roll-back (rolled_back_at) and a later deploy applies it again.
        for name in reversed(prisma_migrations()[2:]):
            assert re.fullmatch(r"\d{14}_[a-z0-9_]+", name)
            psql(db, "-f", os.path.join(PRISMA_MIGRATIONS, name, "down.sql"), "-c",
                 "UPDATE _prisma_migrations SET finished_at = NULL, logs = 'reverted with down.sql' "
                 "WHERE migration_name = '%s' AND rolled_back_at IS NULL" % name)
            out = prisma(db, "migrate", "resolve", "--rolled-back", name).stdout
            assert "marked as rolled back" in out, out


def recorded_version(tool, db):
    """What the tool's history says is applied (None for plain SQL: no history table)."""
    if tool == "alembic":
        return [row[0] for row in db.query("SELECT version_num FROM alembic_version")]
    if tool == "django":
        return [row[0] for row in db.query(
            "SELECT name FROM django_migrations WHERE app = 'clinic' ORDER BY name")]
    if tool == "prisma":
        return [row[0] for row in db.query(
            "SELECT migration_name FROM _prisma_migrations "
            "WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name")]
    return None


VERSION_2 = {
    "alembic": ["0002"],
    "django": ["0001_users_and_plans", "0002_providers_and_patients"],
    "prisma": None,  # the first two migration directories
    "sql": None,
}


# ---------------------------------------------------------------------------
# Tests


@pytest.fixture(scope="module")
def final_schemas(cluster, pg):
    """One database per tool, migrated to the latest version: {tool: (database, description)}."""
    made = {}
    try:
        for tool in TOOLS:
            name = "mig_final_%s" % tool
            cluster.primary.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
            cluster.primary.execute("CREATE DATABASE %s OWNER %s" % (name, OWNER))
            db = Database(cluster, pg, name)
            made[tool] = [db, None]
            upgrade(tool, db)
            made[tool][1] = describe(db)
        yield {tool: tuple(value) for tool, value in made.items()}
    finally:
        for db, _description in made.values():
            cluster.primary.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % db.name)


@pytest.mark.parametrize("tool", TOOLS)
def test_each_project_reaches_the_final_schema(final_schemas, tool):
    db, described = final_schemas[tool]
    tables = described["tables"]
    assert set(tables) == set(FINAL_TABLES)
    for name, expected in FINAL_TABLES.items():
        assert tables[name]["columns"] == expected["columns"], name
        assert tables[name]["constraints"] == expected["constraints"], name
        assert sorted(tables[name]["indexes"]) == expected["indexes"], name
    assert tables["appointments"]["indexes"]["appointments_provider_id_starts_at_idx"] == AGENDA_INDEX
    assert set(described["views"]) == VIEWS
    assert sorted(described["sequences"]) == sorted("%s_id_seq" % name for name in FINAL_TABLES)
    assert described["other"] == []
    history = {"sql": set(), "alembic": {"alembic_version"}, "django": {"django_migrations"},
               "prisma": {"_prisma_migrations"}}[tool]
    assert db.tables() == set(FINAL_TABLES) | history
    if tool == "alembic":
        assert recorded_version(tool, db) == ["0004"]
    elif tool in ("django", "prisma"):
        assert len(recorded_version(tool, db)) == 4


def test_the_four_final_schemas_are_identical(final_schemas):
    reference = final_schemas["sql"][1]
    for tool in TOOLS[1:]:
        assert final_schemas[tool][1] == reference, "%s differs from the plain SQL project" % tool


def test_the_view_works_on_every_project(final_schemas):
    """Same definition text is not enough: the view must also give the same rows.
    The rows are inserted in a transaction that is never committed (the connection
    closes with it open), so the databases stay empty for the other tests."""
    for tool in TOOLS:
        db = final_schemas[tool][0]
        rows = db.query(
            "BEGIN;"
            "INSERT INTO users (id, email, password_hash) VALUES (1, 'dr@example.org', 'x'), (2, 'pt@example.org', 'y');"
            "INSERT INTO providers (id, user_id, npi, specialty) VALUES (1, 1, '1234567890', 'cardiology');"
            "INSERT INTO patients (id, user_id, first_name, last_name, date_of_birth, mrn)"
            "  VALUES (1, 2, 'Ada', 'Lovelace', '1815-12-10', 'MRN-1'), (2, NULL, 'Alan', 'Turing', '1912-06-23', 'MRN-2');"
            "INSERT INTO appointments (patient_id, provider_id, starts_at, ends_at, status) VALUES"
            "  (1, 1, now() + interval '1 day', now() + interval '25 hours', DEFAULT),"
            "  (2, 1, now() + interval '2 days', now() + interval '49 hours', 'cancelled'),"
            "  (2, 1, now() - interval '1 day', now() - interval '23 hours', DEFAULT);"
            "SELECT mrn, npi, status FROM upcoming_appointments ORDER BY starts_at;")
        assert rows == [("MRN-1", "1234567890", "scheduled")], tool


@pytest.mark.parametrize("tool", TOOLS)
def test_each_project_goes_down_to_version_2_and_up_again(final_schemas, new_database, tool):
    final = final_schemas[tool][1]
    db = new_database(tool)
    upgrade(tool, db)
    # Credentials stay off command lines, even where a tool spawns helpers of its own
    # (`prisma migrate resolve` runs the schema engine with the datasource URL in argv).
    with command_lines_seen() as seen:
        downgrade_to_2(tool, db)
    assert not [cmd for cmd in seen if db.password.encode() in cmd or b"postgresql://" + OWNER.encode() in cmd]
    at_2 = describe(db)
    assert at_2 == version_2_of(final)
    expected_history = VERSION_2[tool] if tool != "prisma" else prisma_migrations()[:2]
    assert recorded_version(tool, db) == expected_history
    if tool == "prisma":
        # A quirk a runner must not rely on (Prisma 6.19, JavaScript engine): with
        # migrations rolled back, `migrate status` still says up to date and exits 0,
        # although `migrate deploy` applies them again. Read _prisma_migrations instead.
        status = prisma(db, "migrate", "status")
        assert "Database schema is up to date" in status.stdout, status.stdout
    upgrade(tool, db, from_version=2)
    assert describe(db) == final
    if tool == "prisma":
        assert recorded_version(tool, db) == prisma_migrations()
        rolled_back = db.query("SELECT migration_name FROM _prisma_migrations WHERE rolled_back_at IS NOT NULL "
                               "ORDER BY migration_name")
        assert [row[0] for row in rolled_back] == prisma_migrations()[2:]
    elif tool != "sql":
        assert len(recorded_version(tool, db)) == (1 if tool == "alembic" else 4)


def test_version_2_is_the_same_for_every_project(final_schemas):
    """What a test that targets version 2 can rely on, whatever the tool."""
    shapes = {tool: version_2_of(final_schemas[tool][1]) for tool in TOOLS}
    assert set(shapes["sql"]["tables"]) == VERSION_2_TABLES
    for tool in TOOLS[1:]:
        assert shapes[tool] == shapes["sql"], tool


def test_prisma_status_is_up_to_date_after_deploy(final_schemas):
    db = final_schemas["prisma"][0]
    proc = prisma(db, "migrate", "status")
    assert "Database schema is up to date" in proc.stdout, proc.stdout
    assert "%d migrations found" % len(prisma_migrations()) in proc.stdout, proc.stdout


def test_project_metadata_matches_the_migrations(new_database):
    """The models each tool keeps beside its migrations agree with them."""
    db = new_database("meta")
    # Django: the RunSQL state_operations describe exactly clinic/models.py.
    out = run([django_python(), "manage.py", "makemigrations", "clinic", "--check", "--dry-run"],
              env=db.env(), cwd=DJANGO_DIR).stdout
    assert "No changes detected" in out, out
    # Alembic: one line of revisions, 0001 -> 0004.
    out = alembic(db, "history").stdout
    assert re.findall(r"(\S+) -> (\S+?)(?: \(head\))?,", out) == [
        ("0003", "0004"), ("0002", "0003"), ("0001", "0002"), ("<base>", "0001")], out
    # Prisma: schema.prisma is valid, and every migration has its down.sql.
    out = prisma(db, "validate").stdout
    assert "is valid" in out, out
    for name in prisma_migrations():
        assert os.path.isfile(os.path.join(PRISMA_MIGRATIONS, name, "down.sql")), name
    # Plain SQL: every V file has its U file.
    versions = [sql_version(path) for path in sql_files("V")]
    assert versions == list(range(1, len(versions) + 1))
    assert [sql_version(path) for path in sql_files("U")] == versions
