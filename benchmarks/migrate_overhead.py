"""Overhead: N one-statement SQL migrations through pgops.runbook.migrate against `psql -1 -f` of the same statements.

On a throw-away PostgreSQL server (tests/harness/cluster.py), a project of --count (500)
Flyway-named migrations `V1__t1.sql` ... `V500__t500.sql`, one statement each:

  * --kind create (default): `CREATE TABLE t<n> (id int);`
  * --kind alter: V1 creates table t (id int), each later one `ALTER TABLE t ADD COLUMN c<n> int;`

is applied into a fresh database (created just before, not timed; dropped after, then CHECKPOINT):

  * module: pgops.runbook.migrate (tool sql, defaults: lock_timeout 5s) as the only task of a
    one-task playbook: the advisory lock, the history table, each migration in its own
    transaction with its history row, under lock_timeout/statement_timeout;
  * psql_tcp_ssl: `psql -X -q -v ON_ERROR_STOP=1 -1 -f all.sql` (the same statements concatenated,
    one transaction) over TCP with SSL as the module connects (the password in a PGPASSFILE,
    never on a command line): the comparison the goal is judged on;
  * psql_socket: the same over the Unix socket, a second reference.

One warm-up run of each (--warmup), then --reps (3) runs, alternating, the order rotated each rep;
medians. Goal: module <= 2x psql. A run counts only when the database ends with every table (or
column) and, for the module, N history rows.

Where the module's time goes: playbook_s (ansible-playbook) > task_s (the callback: task start
to result) > module_s (the module's Python process, from the interpreter wrapper) > the sum of
the migrations' own durations (the result's `applied[].duration_s`: each transaction from BEGIN
to COMMIT); the rest of module_s is the process's start-up and imports, connecting, reading and
hashing the files, the lock, the history reads, and per migration the round trips outside its
transaction. The statements each variant sent and their server-side time come from
pg_stat_statements (reset before each run).

Usage (`make venv` first; ~1-2 min with the defaults, see benchmarks/README.md):
    python3 benchmarks/migrate_overhead.py [--count 500] [--reps 3] [--kind create|alter]

Results (summary.txt, summary.json, each module run's ansible output) go to
benchmarks/results/<UTC time>-migrate-overhead/ (ignored by git). Not part of `make test`.
"""

import argparse
import os
import platform
import statistics
import sys
import textwrap
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    MIGRATE_KEEP, MIGRATE_PLAYBOOK, REPO, BenchBase, num, ratio, reexec_in_venv, rotated, say, summarize, versions, wait_timed,
)

VARIANTS = ("module", "psql_tcp_ssl", "psql_socket")
HISTORY = "pgops_schema_history"
STATS_DB = "appdb"  # the harness's database with the pg_stat_statements extension


def statements(kind, count):
    """[(file name, statement)] of the project."""
    if kind == "create":
        return [("V%d__t%d.sql" % (n, n), "CREATE TABLE t%d (id int);" % n) for n in range(1, count + 1)]
    return [("V1__t.sql", "CREATE TABLE t (id int);")] + [("V%d__c%d.sql" % (n, n), "ALTER TABLE t ADD COLUMN c%d int;" % n)
                                                          for n in range(2, count + 1)]


class Bench(BenchBase):
    def __init__(self, args):
        super().__init__(args, "migrate-overhead", subdirs=("project",))
        self.project = os.path.join(self.work, "project")
        self.all_sql = os.path.join(self.work, "all.sql")

    # -- setup ----------------------------------------------------------------------------
    def prepare(self):
        self.start_server()
        self.psql_version = self.tool_version("psql")
        self.prepare_ansible({"migrate.yml": MIGRATE_PLAYBOOK}, keep=MIGRATE_KEEP)
        stmts = statements(self.args.kind, self.args.count)
        for file_name, text in stmts:
            with open(os.path.join(self.project, file_name), "w") as handle:
                handle.write(text + "\n")
        with open(self.all_sql, "w") as handle:
            handle.write("".join(text + "\n" for dummy, text in stmts))
        self.passfile = os.path.join(self.work, "pgpass")
        fd = os.open(self.passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            escaped = self.info["superuser_password"].replace("\\", "\\\\").replace(":", "\\:")
            handle.write("%s:%d:*:postgres:%s\n" % (self.info["host"], self.info["port"], escaped))
        say("   %d migrations (%s) in %s; the same statements in %s"
            % (len(stmts), self.args.kind, os.path.relpath(self.project, REPO), os.path.relpath(self.all_sql, REPO)))

    # -- between runs -------------------------------------------------------------------------
    def fresh_database(self, db):
        p = self.cluster.primary
        p.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)
        p.execute("CREATE DATABASE %s" % db)
        p.execute("CHECKPOINT")
        p.execute("SELECT pg_stat_statements_reset()", dbname=STATS_DB)

    def server_side(self, db):
        """(statements pg_stat_statements counted in `db`, their total execution time in s)."""
        row = self.cluster.primary.execute(
            "SELECT coalesce(sum(s.calls), 0), coalesce(sum(s.total_exec_time), 0) / 1000.0 FROM pg_stat_statements s "
            "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = %s", (db,), dbname=STATS_DB)[0]
        return int(row[0]), float(row[1])

    def check(self, db, variant):
        """None when the database holds every table (or column), and the module's history rows; else what is wrong."""
        p = self.cluster.primary
        count = self.args.count
        if self.args.kind == "create":
            got = p.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename ~ '^t[0-9]+$'",
                            dbname=db)[0][0]
            what = "tables"
        else:
            got = p.execute("SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.t'::regclass AND attnum > 0 "
                            "AND NOT attisdropped", dbname=db)[0][0]
            what = "columns of t"
        if got != count:
            return "%d %s, expected %d" % (got, what, count)
        if variant == "module":
            rows = p.execute("SELECT count(*) FROM %s WHERE success" % HISTORY, dbname=db)[0][0]
            if rows != count:
                return "%d history rows, expected %d" % (rows, count)
        return None

    # -- one run --------------------------------------------------------------------------------
    def run_once(self, variant, warmup=False, rep=None):
        name = self.next_name("%s%s" % (variant, "-warmup" if warmup else "-rep%d" % (rep + 1)))
        db = "ovh_%s" % name[:3]
        self.fresh_database(db)
        rec = {"name": name, "variant": variant, "warmup": warmup, "scale": self.args.count}
        if variant == "module":
            values = dict(self.connection_values(), bench_db=db, bench_project=self.project)
            run = self.run_playbook(name, "migrate.yml", values)
            res = run["res"]
            durations = [m.get("duration_s") for m in res.get("applied") or [] if m.get("duration_s") is not None]
            rec.update((k, run[k]) for k in ("ok", "error", "playbook_s", "task_s", "module_s", "cpu_s", "hwm_mb"))
            rec.update({"applied": len(durations), "applied_sum_s": sum(durations) if durations else None,
                        "applied_mean_ms": statistics.mean(durations) * 1000 if durations else None,
                        "applied_median_ms": statistics.median(durations) * 1000 if durations else None,
                        "applied_max_ms": max(durations) * 1000 if durations else None,
                        "retries": len(res.get("retries") or [])})
            if run["ok"] and len(durations) != self.args.count:
                rec.update(ok=False, error="applied %d migrations, expected %d" % (len(durations), self.args.count))
            if rec["module_s"] is not None and rec["applied_sum_s"] is not None:
                rec["outside_s"] = rec["module_s"] - rec["applied_sum_s"]
        else:
            over = variant[len("psql_"):]
            if over == "socket":
                conn_args, env = self.socket_args(), dict(self.pg_env)
            else:
                conn_args = ["-h", self.info["host"], "-p", str(self.info["port"]), "-U", "postgres"]
                env = dict(self.pg_env, PGPASSFILE=self.passfile, PGSSLMODE="require")
            argv = ([os.path.join(self.bindir, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1"] + conn_args
                    + ["-d", db, "-f", self.all_sql])
            returncode, wall, cpu_s, dummy_rss, err = wait_timed(argv, env, os.path.join(self.work, name + ".stderr"))
            rec.update({"ok": returncode == 0, "error": None if returncode == 0 else (err or "psql exit %d" % returncode),
                        "playbook_s": None, "task_s": wall, "module_s": None, "cpu_s": cpu_s})
        rec["statements"], rec["server_s"] = self.server_side(db)
        if rec["ok"]:
            problem = self.check(db, variant)
            if problem:
                rec.update(ok=False, error=problem)
        self.cluster.primary.execute("DROP DATABASE %s WITH (FORCE)" % db)
        self.cluster.primary.execute("CHECKPOINT")
        rec["loadavg_1m"] = os.getloadavg()[0]
        self.runs.append(rec)
        if variant == "module":
            say("   %-24s %s playbook %6.2f s  task %6.2f s  module %6.2f s  in migrations %6.2f s (mean %s ms)"
                "  statements %d  server %5.2f s%s"
                % (name, "ok    " if rec["ok"] else "FAILED", rec["playbook_s"] or 0, rec["task_s"] or 0,
                   rec["module_s"] or 0, rec["applied_sum_s"] or 0, num(rec["applied_mean_ms"], "%.2f"),
                   rec["statements"], rec["server_s"], "" if rec["ok"] else "  " + str(rec["error"])))
        else:
            say("   %-24s %s wall %6.2f s  cpu %5.2f s  statements %d  server %5.2f s%s"
                % (name, "ok    " if rec["ok"] else "FAILED", rec["task_s"], rec["cpu_s"], rec["statements"],
                   rec["server_s"], "" if rec["ok"] else "  " + str(rec["error"])))
        return rec

    # -- report -----------------------------------------------------------------------------------
    def report(self, meta):
        args = self.args
        lines = []
        add = lines.append
        add("")
        add("pgops.runbook.migrate vs psql -1 -f: %d one-statement migrations (%s), each run into a fresh database"
            " (medians of %d rep(s), after %d warm-up run(s) of each)" % (args.count, args.kind, args.reps, args.warmup))
        add("server PostgreSQL %s; %s; ansible-core %s; Python %s"
            % (self.server_version, self.psql_version, self.ansible_core, platform.python_version()))
        low, high = self.load_range()
        add("%d CPUs; load average %.2f at start, %.2f at end, %.2f-%.2f after the runs (other work on the machine"
            " skews times)" % (os.cpu_count(), meta["loadavg_start"][0], meta["loadavg_end"][0], low, high))
        add("")
        head = ("%-13s %6s %10s %8s %8s %7s %13s %11s %14s %10s %9s %10s %8s"
                % ("variant", "ok", "playbook_s", "task_s", "module_s", "cpu_s", "migrations_s", "mean_ms/mig",
                   "median_ms/mig", "outside_s", "per_stmt", "statements", "server_s"))
        add(head)
        add("-" * len(head))
        sums = {}
        for variant in VARIANTS:
            runs = [r for r in self.runs if r["variant"] == variant and not r["warmup"]]
            s = summarize(runs, ("playbook_s", "task_s", "module_s", "cpu_s", "applied_sum_s", "applied_mean_ms",
                                 "applied_median_ms", "outside_s", "statements", "server_s"), max_keys=("applied_max_ms",))
            s["variant"] = variant
            s["per_migration_ms"] = s["task_s"] * 1000.0 / args.count if s["task_s"] is not None else None
            sums[variant] = s
            if not s["ok"]:
                add("%-13s   %s" % (variant, "not run" if not s["runs"] else "failed: %s" % s["error"]))
                continue
            add("%-13s %6s %10s %8s %8s %7s %13s %11s %14s %10s %9s %10s %8s" % (
                variant, "%d/%d" % (s["ok"], s["runs"]), num(s["playbook_s"], "%.2f"), num(s["task_s"], "%.2f"),
                num(s["module_s"], "%.2f"), num(s["cpu_s"], "%.2f"), num(s["applied_sum_s"], "%.2f"),
                num(s["applied_mean_ms"], "%.2f"), num(s["applied_median_ms"], "%.2f"), num(s["outside_s"], "%.2f"),
                num(s["per_migration_ms"], "%.2fms"), num(s["statements"], "%.0f"), num(s["server_s"], "%.2f")))
        add("  task_s: the module's task (callback) / psql's wall time; module_s: the module's Python process;")
        add("  migrations_s: the sum of applied[].duration_s (each migration's transaction, BEGIN to COMMIT), mean and")
        add("  median per migration; outside_s = module_s - migrations_s; per_stmt = task_s / %d; statements and" % args.count)
        add("  server_s: what pg_stat_statements counted in the run's database (every statement, BEGIN/SET/COMMIT")
        add("  included) and their summed execution time on the server. cpu_s: the module process's (not Ansible's) or")
        add("  psql's CPU time.")
        add("")
        m, tcp, sock = sums["module"], sums["psql_tcp_ssl"], sums["psql_socket"]
        ratios = {"task_vs_tcp_ssl": ratio(m["task_s"], tcp["task_s"]), "playbook_vs_tcp_ssl": ratio(m["playbook_s"], tcp["task_s"]),
                  "module_vs_tcp_ssl": ratio(m["module_s"], tcp["task_s"]),
                  "migrations_vs_tcp_ssl": ratio(m["applied_sum_s"], tcp["task_s"]),
                  "task_vs_socket": ratio(m["task_s"], sock["task_s"]), "tcp_ssl_vs_socket": ratio(tcp["task_s"], sock["task_s"]),
                  "statements_per_migration": m["statements"] / args.count if m["statements"] is not None else None}
        add("ratios, module / psql -1 -f over TCP+SSL (goal <= 2x): task %s%s; playbook %s; module process %s; the"
            " migrations' transactions alone %s"
            % (num(ratios["task_vs_tcp_ssl"], "%.2fx"),
               "" if ratios["task_vs_tcp_ssl"] is None else
               ("  -> goal met" if ratios["task_vs_tcp_ssl"] <= 2.0 else "  -> goal NOT met"),
               num(ratios["playbook_vs_tcp_ssl"], "%.2fx"), num(ratios["module_vs_tcp_ssl"], "%.2fx"),
               num(ratios["migrations_vs_tcp_ssl"], "%.2fx")))
        add("  against psql over the socket: task %s (psql itself: TCP+SSL / socket %s)"
            % (num(ratios["task_vs_socket"], "%.2fx"), num(ratios["tcp_ssl_vs_socket"], "%.2fx")))
        needed = (m["playbook_s"], m["task_s"], m["module_s"], m["applied_sum_s"])
        if None not in needed:
            add("  module: playbook %.2f s ~ ansible-playbook start/exit %.2f + Ansible's task handling %.2f + the module"
                " process %.2f, of which %.2f s in the %d migrations' transactions (%s ms each, mean) and %.2f s outside"
                " them (start-up, imports, connect, reading and hashing the files, lock, history reads, the round trips"
                " before each transaction)"
                % (m["playbook_s"], m["playbook_s"] - m["task_s"], m["task_s"] - m["module_s"], m["module_s"],
                   m["applied_sum_s"], args.count, num(m["applied_mean_ms"], "%.2f"), m["module_s"] - m["applied_sum_s"]))
        if m["statements"] is not None and tcp["statements"] is not None:
            add("  statements: the module sent %.0f (%.1f per migration), psql %.0f; server time in them %s s vs %s s"
                % (m["statements"], ratios["statements_per_migration"], tcp["statements"], num(m["server_s"], "%.2f"),
                   num(tcp["server_s"], "%.2f")))
        if m.get("applied_max_ms_max") is not None:
            add("  slowest single migration (any run): %.1f ms" % m["applied_max_ms_max"])
        failed = [r for r in self.runs if not r["ok"]]
        if failed:
            add("")
            add("%d run(s) failed (not in the medians):" % len(failed))
            for r in failed:
                add("  %s: %s" % (r["name"], r["error"]))
        text = "\n".join(lines)
        print(text, flush=True)
        return text, sums, ratios


def stage2(args):
    meta = {"versions": versions(), "cpus": os.cpu_count(), "args": vars(args), "loadavg_start": os.getloadavg()}
    say("== load average at start: %.2f %.2f %.2f" % tuple(meta["loadavg_start"]))
    bench = Bench(args)
    say("== results in %s" % os.path.relpath(bench.out_dir, REPO))
    t_start = time.monotonic()
    try:
        say("== starting a throw-away server")
        bench.prepare()
        say("== %s; ansible-core %s" % (bench.psql_version, bench.ansible_core))
        say("== %d warm-up run(s) of each variant, then %d rep(s), alternating (load %.2f)"
            % (args.warmup, args.reps, os.getloadavg()[0]))
        for dummy in range(args.warmup):
            for variant in VARIANTS:
                bench.run_once(variant, warmup=True)
        for rep in range(args.reps):
            for variant in rotated(VARIANTS, rep):
                bench.run_once(variant, rep=rep)
    finally:
        if getattr(bench, "passfile", None) and os.path.exists(bench.passfile):
            os.unlink(bench.passfile)
        bench.cleanup()
    meta["loadavg_end"] = os.getloadavg()
    meta["total_s"] = round(time.monotonic() - t_start, 1)
    text, sums, ratios = bench.report(meta)
    bench.write_results(text, {"meta": meta, "summaries": sums, "ratios": ratios, "runs": bench.runs})
    say("load average at end: %.2f %.2f %.2f" % tuple(meta["loadavg_end"]))
    say("total %.0f s; details in %s" % (meta["total_s"], os.path.relpath(bench.out_dir, REPO)))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=textwrap.dedent(__doc__.split("\n\n", 1)[1]))
    parser.add_argument("--count", type=int, default=500, help="migrations (default 500)")
    parser.add_argument("--kind", choices=("create", "alter"), default="create",
                        help="create: CREATE TABLE t<n> each; alter: ALTER TABLE t ADD COLUMN c<n> each (default create)")
    parser.add_argument("--reps", type=int, default=3, help="measured runs of each variant, alternating (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up runs of each variant, not counted (default 1)")
    parser.add_argument("--results-dir", help="default: benchmarks/results/<UTC time>-migrate-overhead")
    args = parser.parse_args(argv)
    if args.kind == "alter" and args.count > 1599:
        parser.error("--kind alter: a table has at most 1600 columns")
    reexec_in_venv(__file__, argv)
    return stage2(args)


if __name__ == "__main__":
    sys.exit(main())
