"""The collection's one SQL splitter: statements cut where psql cuts them (never at a
semicolon inside a literal, identifier, dollar quote, comment, parentheses or a BEGIN
ATOMIC body), psql meta-commands and unclosed quotes refused with their line, and what
a statement needs: no transaction block, or its own transaction (enum values)."""

import pytest

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.restore.globals_sql import roles_script
from ansible_collections.pgops.runbook.plugins.module_utils.sql_script import (
    SqlScriptError, Statement, adds_enum_value, describe, header_directives, is_transaction_control,
    needs_no_transaction, split_statements,
)


def texts(script, **kwargs):
    return [statement.text for statement in split_statements(script, **kwargs)]


# Each script would be split differently (or refused) by a splitter that got its case wrong.
@pytest.mark.parametrize("script, expected", [
    ("SELECT 'a;b'; SELECT 2", ["SELECT 'a;b'", "SELECT 2"]),
    ("SELECT 'it''s; fine'; SELECT 2", ["SELECT 'it''s; fine'", "SELECT 2"]),
    # an E-string: \' does not close it
    ("SELECT E'it\\'s; fine'; SELECT 2", ["SELECT E'it\\'s; fine'", "SELECT 2"]),
    ("SELECT e'tab\\t;' || E'\\\\'; SELECT 2", ["SELECT e'tab\\t;' || E'\\\\'", "SELECT 2"]),  # E'\\' ends after \\
    # standard_conforming_strings: in a plain string a backslash is a backslash, so 'C:\' is closed
    ("SELECT 'C:\\'; SELECT ';'", ["SELECT 'C:\\'", "SELECT ';'"]),
    # a word ending in e is no E prefix
    ("SELECT name'x\\'; SELECT 2", ["SELECT name'x\\'", "SELECT 2"]),
    ('SELECT "odd;""name" FROM t; SELECT 2', ['SELECT "odd;""name" FROM t', "SELECT 2"]),
    ("SELECT \"it's\"; SELECT 'a\"b'; SELECT 3", ["SELECT \"it's\"", "SELECT 'a\"b'", "SELECT 3"]),
    ("SELECT $$a;b$$; SELECT 2", ["SELECT $$a;b$$", "SELECT 2"]),
    ("SELECT $$it's; -- /*$$; SELECT 2", ["SELECT $$it's; -- /*$$", "SELECT 2"]),
    ("SELECT $x$a;$$;b$x$; SELECT 2", ["SELECT $x$a;$$;b$x$", "SELECT 2"]),
    ("SELECT $_1$a;$_1$, $é$;$é$; SELECT 2", ["SELECT $_1$a;$_1$, $é$;$é$", "SELECT 2"]),
    ("SELECT '$$'; SELECT '$$'", ["SELECT '$$'", "SELECT '$$'"]),
    # $1 is a parameter: $1$ opens no dollar quote that the next $1$ would close
    ("SELECT $1$; SELECT $1$", ["SELECT $1$", "SELECT $1$"]),
    ("PREPARE p(int, int) AS SELECT $1 + $2; EXECUTE p(1, 2)", ["PREPARE p(int, int) AS SELECT $1 + $2", "EXECUTE p(1, 2)"]),
    # $ inside an identifier opens no dollar quote either
    ("SELECT price$usd$ FROM t; SELECT $usd$;$usd$", ["SELECT price$usd$ FROM t", "SELECT $usd$;$usd$"]),
    ("SELECT 1 -- no; split\n; SELECT 2", ["SELECT 1", "SELECT 2"]),
    ("SELECT 1, -- a; b\n 2; SELECT 3", ["SELECT 1, -- a; b\n 2", "SELECT 3"]),
    ("-- it's\nSELECT 1; SELECT 2", ["SELECT 1", "SELECT 2"]),
    ("SELECT '--;', '/*'; SELECT '*/'", ["SELECT '--;', '/*'", "SELECT '*/'"]),
    ("SELECT 1 /* a; */ + 1; SELECT 2", ["SELECT 1 /* a; */ + 1", "SELECT 2"]),
    # block comments nest: the first */ does not end the outer comment
    ("SELECT 1 /* a /* b; */ c; */ + 1; SELECT 2", ["SELECT 1 /* a /* b; */ c; */ + 1", "SELECT 2"]),
    ("/* it's /* \"x */ ; */ SELECT 1; SELECT 2", ["SELECT 1", "SELECT 2"]),
    ("SELECT 1 --x\r\n; SELECT 2", ["SELECT 1", "SELECT 2"]),
])
def test_semicolons_inside_quotes_and_comments_split_nothing(script, expected):
    assert texts(script) == expected


def test_empty_statements_are_dropped_and_the_last_needs_no_semicolon():
    statements = split_statements(";;\n SELECT 1 ;;; /* nothing */ ; -- nor this\n;\nSELECT 2\n\n")
    assert statements == [Statement("SELECT 1", 2, 0), Statement("SELECT 2", 4, 1)]
    assert split_statements("") == [] and split_statements(" -- only a comment\n/* and ; this */ ;\n") == []


def test_comments_between_statements_are_dropped_those_inside_kept():
    script = "-- header\n/* block */ INSERT INTO t -- target\n  VALUES (1) /* one */ ; -- trailing\nSELECT 2 -- two\n"
    assert texts(script) == ["INSERT INTO t -- target\n  VALUES (1)", "SELECT 2"]


def test_semicolons_inside_parentheses_do_not_end_the_statement():
    script = ("CREATE RULE log AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (new.id); INSERT INTO b VALUES (new.id));\n"
              "SELECT 2")
    assert texts(script) == [script.split(";\n", maxsplit=1)[0], "SELECT 2"]


def test_begin_atomic_body_is_one_statement_but_a_begin_statement_is_not_a_block():
    body = ("CREATE OR REPLACE FUNCTION f(x int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n"
            "  SELECT CASE WHEN x > 0 THEN x ELSE 0 END;\nEND")
    procedure = "create procedure p() begin atomic insert into t values (1); end"
    assert texts(body + ";\n" + procedure + ";\nSELECT 3;") == [body, procedure, "SELECT 3"]
    assert texts("BEGIN;\nSELECT 1;\nEND;\nCOMMIT;") == ["BEGIN", "SELECT 1", "END", "COMMIT"]
    # a parameter list's words do not count, nor do other CREATE statements
    assert texts("CREATE TABLE t (\"begin\" int, b int); SELECT 1") == ['CREATE TABLE t ("begin" int, b int)', "SELECT 1"]


def test_statements_know_their_line_and_index():
    script = ("-- V1: orders\n"                        # 1
              "\n"                                     # 2
              "CREATE TABLE orders (\n"                # 3
              "  id bigint, note text DEFAULT 'a;\n"   # 4
              "b'\n"                                   # 5
              ");  CREATE INDEX ON orders (id);\n"     # 6
              "/* a\n"                                 # 7
              "   comment */\n"                        # 8
              "\n"                                     # 9
              "SELECT $$\n;\n$$")                      # 10
    statements = split_statements(script)
    assert [(s.line, s.index) for s in statements] == [(3, 0), (6, 1), (10, 2)]
    assert statements[1].text == "CREATE INDEX ON orders (id)"
    assert split_statements("SELECT 1;\r\n\r\nSELECT 2")[1].line == 3
    assert split_statements(u"\ufeffSELECT 1")[0].text == "SELECT 1"  # byte order mark of an editor


@pytest.mark.parametrize("script, line, command", [
    ("SELECT 1;\n\\connect other\nSELECT 2;", 2, "\\connect"),
    ("-- \\set x 1 is a comment here\nSELECT '\n\\not a command;\n', E'\\\\', $$\n\\nor this\n$$;\n\\set ON_ERROR_STOP 1\n", 7, "\\set"),
    ("/* \\i x.sql\n*/ SELECT 1;\n\n  \\i other.sql", 4, "\\i"),
    ("SELECT 1 \\gset\n", 1, "\\gset"),
    ("SELECT 1 \\\\ SELECT 2", 1, "\\\\"),
])
def test_psql_meta_commands_are_refused_with_their_line(script, line, command):
    with pytest.raises(SqlScriptError) as caught:
        split_statements(script)
    assert isinstance(caught.value, PgopsError)
    assert str(caught.value).startswith("Line %d: psql meta-command %s is not SQL;" % (line, command))


def test_ignored_meta_commands_are_dropped_between_statements_only():
    script = "\\restrict abc'123\nSET a = 1;\n\\unrestrict abc'123\n"
    assert texts(script, ignore_meta_commands=("restrict", "unrestrict")) == ["SET a = 1"]
    with pytest.raises(SqlScriptError, match="Line 1: psql meta-command \\\\restrict"):
        split_statements(script)
    with pytest.raises(SqlScriptError, match="Line 2: psql meta-command \\\\connect"):
        split_statements("\\restrict k\n\\connect db\n", ignore_meta_commands=("restrict",))
    with pytest.raises(SqlScriptError, match="Line 2: psql meta-command \\\\restrict"):
        split_statements("SET a =\n\\restrict k\n1;", ignore_meta_commands=("restrict",))


@pytest.mark.parametrize("script, message", [
    ("SELECT 1;\nSELECT 'abc;\nSELECT 2;\n", "Line 2: the string literal that starts here is never closed"),
    ("SELECT 1;\nSELECT 'abc''\n", "Line 2: the string literal"),
    ("SELECT E'abc\\';\nSELECT 2;", "Line 1: the E'...' string literal that starts here is never closed"),
    ('SELECT 1,\n  "abc;\n', "Line 2: the quoted identifier that starts here is never closed"),
    ("\n\nCREATE FUNCTION f() AS $fn$\nSELECT $$;$$;\n$$ LANGUAGE sql;", "Line 3: the dollar-quoted string that starts here with $fn$"),
    ("SELECT 1;\n/* outer /* inner */\nSELECT 2;", "Line 2: the /* comment that starts here is never closed"),
    ("SELECT 1;\nSELECT count(*\nFROM t;\nSELECT 2;", "Line 2: the parenthesis opened here is never closed"),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC SELECT 1;\n", "Line 2: the BEGIN that starts here"),
])
def test_unterminated_quotes_and_comments_name_the_line_they_start_on(script, message):
    with pytest.raises(SqlScriptError) as caught:
        split_statements(script)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("text", [
    "BEGIN", "begin transaction isolation level serializable", "START TRANSACTION READ ONLY", "COMMIT", "commit and chain",
    "END", "ROLLBACK", "rollback work", "ABORT", "PREPARE TRANSACTION 'tx1'", "/* go */ -- now\n  Commit",
])
def test_transaction_control(text):
    assert is_transaction_control(text)


@pytest.mark.parametrize("text", [
    "SAVEPOINT s", "ROLLBACK TO SAVEPOINT s", "ROLLBACK WORK TO s", "RELEASE SAVEPOINT s", "COMMIT PREPARED 'tx1'",
    "SELECT 'begin'", "-- begin\nSELECT 1", "/* commit */ SELECT 1", "PREPARE transaction AS SELECT 1",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END", '"begin"',
])
def test_not_transaction_control(text):
    assert not is_transaction_control(text)


@pytest.mark.parametrize("text, reason", [
    ("CREATE INDEX CONCURRENTLY i ON t (a)", "CREATE INDEX CONCURRENTLY"),
    ("create\n  unique index\tconcurrently if not exists i on t (a)", "CREATE INDEX CONCURRENTLY"),
    ("-- why: big table\n/* note */ CREATE INDEX CONCURRENTLY ON t USING btree (a) WHERE b = 'x'", "CREATE INDEX CONCURRENTLY"),
    ("DROP INDEX CONCURRENTLY IF EXISTS s.i", "DROP INDEX CONCURRENTLY"),
    ("REINDEX INDEX CONCURRENTLY i", "REINDEX CONCURRENTLY"),
    ("reindex (verbose) table concurrently t", "REINDEX CONCURRENTLY"),
    ("REINDEX (CONCURRENTLY, TABLESPACE fast) TABLE t", "REINDEX CONCURRENTLY"),
    ("REINDEX SCHEMA public", "REINDEX SCHEMA"),
    ("REINDEX DATABASE app", "REINDEX DATABASE"),
    ("REINDEX SYSTEM app", "REINDEX SYSTEM"),
    ("VACUUM", "VACUUM"),
    ("vacuum (analyze, verbose) t", "VACUUM"),
    ("VACUUM FULL t", "VACUUM"),
    ("CREATE DATABASE app OWNER app", "CREATE DATABASE"),
    ("DROP DATABASE IF EXISTS app", "DROP DATABASE"),
    ("ALTER DATABASE app SET TABLESPACE fast", "ALTER DATABASE ... SET TABLESPACE"),
    ("CREATE TABLESPACE fast LOCATION '/mnt/fast'", "CREATE TABLESPACE"),
    ("DROP TABLESPACE fast", "DROP TABLESPACE"),
    ("ALTER SYSTEM SET work_mem = '64MB'", "ALTER SYSTEM"),
    ("CLUSTER", "CLUSTER without a table name"),
    ("cluster verbose", "CLUSTER without a table name"),
    ("CLUSTER (VERBOSE);", "CLUSTER without a table name"),
    ("CREATE SUBSCRIPTION s CONNECTION 'host=a' PUBLICATION p", "CREATE SUBSCRIPTION that creates a replication slot"),
    ("CREATE SUBSCRIPTION s CONNECTION 'host=a' PUBLICATION p WITH (copy_data = false, create_slot = true)",
     "CREATE SUBSCRIPTION that creates a replication slot"),
    ("ALTER SUBSCRIPTION s REFRESH PUBLICATION WITH (copy_data = false)", "ALTER SUBSCRIPTION ... REFRESH"),
    ("ALTER SUBSCRIPTION s SET PUBLICATION p2", "ALTER SUBSCRIPTION ... SET PUBLICATION with refresh"),
    ("ALTER SUBSCRIPTION s ADD PUBLICATION p2, p3 WITH (copy_data = false)", "ALTER SUBSCRIPTION ... ADD PUBLICATION with refresh"),
    ("DROP SUBSCRIPTION IF EXISTS s", "DROP SUBSCRIPTION"),
    ("COMMIT PREPARED 'tx1'", "COMMIT PREPARED"),
    ("rollback prepared 'tx1'", "ROLLBACK PREPARED"),
    ("DISCARD ALL", "DISCARD ALL"),
    ("ALTER TABLE ONLY public.measures DETACH PARTITION public.measures_2020 CONCURRENTLY",
     "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY"),
])
def test_statements_refused_in_a_transaction_block(text, reason):
    assert needs_no_transaction(text, server_version_num=160004) == reason


@pytest.mark.parametrize("text", [
    "CREATE INDEX i ON t (a)",
    'CREATE INDEX "concurrently" ON t (a)',
    "DROP INDEX i",
    "REINDEX TABLE t",
    "REINDEX (VERBOSE) INDEX i",
    "REINDEX (CONCURRENTLY false) TABLE t",
    "ANALYZE t",
    "CLUSTER t",
    "CLUSTER VERBOSE t USING t_pkey",
    "CLUSTER (VERBOSE) t",
    "ALTER DATABASE app SET work_mem = '8MB'",
    "ALTER DATABASE app SET default_tablespace = fast",
    "ALTER TABLESPACE fast OWNER TO app",
    "CREATE SUBSCRIPTION s CONNECTION 'host=a' PUBLICATION p WITH (create_slot = false, slot_name = s)",
    "CREATE SUBSCRIPTION s CONNECTION 'host=a' PUBLICATION p WITH (connect = 'off')",
    "ALTER SUBSCRIPTION s SET PUBLICATION p2 WITH (refresh = false)",
    "ALTER SUBSCRIPTION s DROP PUBLICATION p2 WITH (refresh = off)",
    "ALTER SUBSCRIPTION s SET (slot_name = NONE)",
    "ALTER SUBSCRIPTION s DISABLE",
    "ALTER TABLE measures DETACH PARTITION measures_2020",
    "ALTER TABLE measures DETACH PARTITION measures_2020 FINALIZE",
    "ALTER TYPE mood ADD VALUE 'meh'",  # PostgreSQL 12+ (server_version_num 160004 below)
    "REFRESH MATERIALIZED VIEW CONCURRENTLY mv",
    "DISCARD PLANS",
    # the words in strings, quoted identifiers and comments do not count
    "INSERT INTO audit (sql) VALUES ('CREATE INDEX CONCURRENTLY i ON t (a)')",
    "INSERT INTO audit (sql) VALUES ($q$VACUUM$q$)",
    "-- VACUUM\nSELECT 1",
    "/* DROP DATABASE app; */ SELECT 1",
    "COMMENT ON TABLE t IS 'run VACUUM FULL after loading'",
    'SELECT 1 AS "vacuum"',
    "SELECT vacuum_count FROM pg_stat_user_tables",
    "CREATE INDEX /* CONCURRENTLY */ i ON t (a)",
    "CREATE TABLE jobs (id int, note text DEFAULT 'vacuum concurrently')",
])
def test_statements_allowed_in_a_transaction_block(text):
    assert needs_no_transaction(text, server_version_num=160004) is None


def test_enum_values_need_no_transaction_before_12_only_and_are_always_reported():
    for text in ("ALTER TYPE mood ADD VALUE 'meh'", "alter type \"My Schema\".mood\n add value if not exists 'meh' before 'ok'"):
        assert adds_enum_value(text)
        assert needs_no_transaction(text, server_version_num=110022) == "before PostgreSQL 12, ALTER TYPE ... ADD VALUE"
        assert needs_no_transaction(text, server_version_num=120000) is None
        assert needs_no_transaction(text) is None
    for text in ("ALTER TYPE mood RENAME VALUE 'meh' TO 'so-so'", "ALTER TYPE point3 ADD ATTRIBUTE value int",
                 "ALTER TABLE t ADD VALUE int", "SELECT 'ALTER TYPE mood ADD VALUE'", "ALTER TYPE add OWNER TO app"):
        assert not adds_enum_value(text)
        assert needs_no_transaction(text, server_version_num=110022) is None


def test_header_directives_come_from_the_leading_comment_lines():
    script = ("-- Copyright: the clinic team\n"
              "-- pgops: no-transaction\n"
              "--pgops:lock_timeout=10s\n"
              "/* a block comment in between */\n"
              "-- PGOPS:  statement_timeout = 5min \n"
              "-- pgops: some-future-key=a=b\n"
              "\n"
              "CREATE INDEX CONCURRENTLY i ON t (a);\n"
              "SELECT '-- pgops: not a directive', $$\n-- pgops: nor this\n$$;\n")
    assert header_directives(script) == {"no-transaction": True, "lock_timeout": "10s", "statement_timeout": "5min",
                                         "some-future-key": "a=b"}
    assert header_directives("SELECT 1;\n-- a comment\n") == {}
    assert header_directives("") == {}


@pytest.mark.parametrize("script, message", [
    ("SELECT 1;\n-- pgops: no-transaction\nVACUUM;", "Line 2: directive -- pgops: no-transaction comes after the first statement"),
    ("-- pgops: no-transaction\n-- pgops: no-transaction\nVACUUM;", "Line 2: directive no-transaction is given twice"),
    ("-- pgops:\nSELECT 1;", "Line 1: directive -- pgops: is not of the form"),
    ("-- pgops: lock timeout=1s\nSELECT 1;", "Line 1: directive -- pgops: lock timeout=1s is not of the form"),
])
def test_misplaced_malformed_or_repeated_directives_are_refused(script, message):
    with pytest.raises(SqlScriptError) as caught:
        header_directives(script)
    assert str(caught.value).startswith(message)


def test_describe_makes_one_short_line():
    assert describe("SELECT  1\n\tFROM t") == "SELECT 1 FROM t"
    long = "CREATE INDEX CONCURRENTLY orders_customer_created_idx\n    ON orders (customer_id, created_at DESC)"
    short = describe(long, width=40)
    assert len(short) <= 40 and short.endswith("...") and short.startswith("CREATE INDEX CONCURRENTLY orders")
    assert describe(long, width=200) == " ".join(long.split())


FLYWAY_MIGRATION = """\
-- V7__orders_and_status.sql
-- Orders get a status; the index is built without locking writers.
-- pgops: no-transaction
-- pgops: lock_timeout=5s

CREATE TYPE order_status AS ENUM ('new', 'paid');
ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'shipped' AFTER 'paid';

ALTER TABLE orders
    ADD COLUMN status order_status NOT NULL DEFAULT 'new',  -- backfilled below; no rewrite on PG 11+
    ADD COLUMN note text DEFAULT E'n/a; see \\'legacy\\'';

/* Backfill in one statement:
   the old flag column; /* nested note */ goes away in V8. */
UPDATE orders SET status = 'paid' WHERE paid_flag;

CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_status_idx
    ON orders (status) WHERE status <> 'shipped';

CREATE OR REPLACE FUNCTION orders_touch() RETURNS trigger
LANGUAGE plpgsql AS $body$
BEGIN
    NEW.updated_at := now();  -- keep; the trigger needs it
    IF NEW.note IS NULL THEN
        NEW.note := 'set by trigger; $$ is fine here';
    END IF;
    RETURN NEW;
END;
$body$;

COMMENT ON FUNCTION orders_touch() IS 'sets updated_at; see V7';
"""


def test_a_flyway_migration_file():
    statements = split_statements(FLYWAY_MIGRATION)
    assert [(s.index, s.line, describe(s.text, 30)) for s in statements] == [
        (0, 6, "CREATE TYPE order_status AS..."),
        (1, 7, "ALTER TYPE order_status ADD..."),
        (2, 9, "ALTER TABLE orders ADD COLU..."),
        (3, 15, "UPDATE orders SET status =..."),
        (4, 17, "CREATE INDEX CONCURRENTLY I..."),
        (5, 20, "CREATE OR REPLACE FUNCTION..."),
        (6, 31, "COMMENT ON FUNCTION orders_..."),
    ]
    assert statements[2].text.endswith("ADD COLUMN note text DEFAULT E'n/a; see \\'legacy\\''")
    assert "-- backfilled below; no rewrite on PG 11+" in statements[2].text
    assert statements[5].text.endswith("    RETURN NEW;\nEND;\n$body$")
    assert header_directives(FLYWAY_MIGRATION) == {"no-transaction": True, "lock_timeout": "5s"}
    assert [bool(needs_no_transaction(s.text, 160004)) for s in statements] == [False] * 4 + [True, False, False]
    assert [adds_enum_value(s.text) for s in statements] == [False, True] + [False] * 5
    assert not [s for s in statements if is_transaction_control(s.text)]


def test_function_bodies_and_do_blocks_keep_their_semicolons():
    script = r"""
DO $do$
DECLARE
    stmt text := 'ALTER TABLE t ADD COLUMN x int;';
BEGIN
    EXECUTE stmt;
    EXECUTE format($f$CREATE TABLE %I (a text DEFAULT '$$;')$f$, 'copy');
    RAISE NOTICE E'done;\n';
END
$do$;
CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT a + b; -- sum';
SELECT add(1, 2);
"""
    statements = texts(script)
    assert len(statements) == 3
    assert statements[0].startswith("DO $do$") and statements[0].endswith("END\n$do$")
    assert statements[1] == "CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT a + b; -- sum'"
    assert statements[2] == "SELECT add(1, 2)"


def test_restore_keeps_roles_of_a_globals_script_wrapped_in_restrict():
    """pg_dumpall since 17.6/16.10/15.14 wraps its script in \\restrict KEY ... \\unrestrict KEY."""
    script = ("--\n-- PostgreSQL database cluster dump\n--\n\n\\restrict Vb3oQe9x\n\n"
              "SET default_transaction_read_only = off;\n\nSET client_encoding = 'UTF8';\n"
              "CREATE ROLE app;\nALTER ROLE app WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:a;b';\n\n"
              "--\n-- PostgreSQL database cluster dump complete\n--\n\n\\unrestrict Vb3oQe9x\n\n")
    sql, report = roles_script(script, existing_roles=["postgres"])
    assert sql == ("SET default_transaction_read_only = off;\nSET client_encoding = 'UTF8';\nCREATE ROLE app;\n"
                   "ALTER ROLE app WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:a;b';\n")
    assert report == dict(created=["app"], left_alone=[], skipped={})
    with pytest.raises(SqlScriptError, match="Line 2: psql meta-command \\\\connect"):
        roles_script("CREATE ROLE app;\n\\connect template1\n", existing_roles=[])
