"""Lock impact: an ALTER TABLE behind a long transaction, under write traffic, by pgops.runbook.migrate and by psql.

On a throw-away PostgreSQL server (tests/harness/cluster.py), a table `patients` (--rows rows)
takes pgbench write traffic (two custom scripts, 4:1: UPDATE one random row, INSERT one row;
--clients 2, -T --duration, --rate transactions per second, -l: each transaction's latency and
completion time in a per-transaction log). Meanwhile:

  * a blocker: a long transaction (`BEGIN; SELECT count(*) FROM patients`, then idle) holding
    ACCESS SHARE on the table. It blocks none of the traffic by itself;
  * a migration `ALTER TABLE patients ADD COLUMN allergies text`, which needs ACCESS EXCLUSIVE:
    it queues behind the blocker, and every later UPDATE/INSERT queues behind it.

The blocker is released --blocker seconds after the ALTER is first seen waiting (pg_locks,
polled every 25 ms), so both variants face the same obstacle:

  (a) module: pgops.runbook.migrate (tool sql, V1__add_allergies.sql) with lock_timeout
      --lock-timeout (2s) and lock_retries --lock-retries (10): the ALTER gives up after
      lock_timeout, the traffic flows again, the migration is retried with growing waits;
  (b) psql: `psql -X -v ON_ERROR_STOP=1 -1 -f` of the same file, no lock_timeout: the ALTER
      waits as long as the blocker, and so does the traffic.

Both connect as postgres over TCP with SSL (psql finds the password in a PGPASSFILE; never on a
command line); pgbench uses the Unix socket. Each run starts from a fresh copy of the same
database. --reps runs of each variant, alternating, the order rotated each rep.

Reported per run, from pgbench's per-transaction log: the largest latency (from its scheduled
start, so it is the wait a request arriving on time sees) and the longest gap between two
consecutive completed transactions (of any client): the stall of the traffic. And: how long the
migration took to succeed (process start -> the new column visible; first lock wait ->
column visible), its lock waits (each time the ALTER stood in the queue), the sessions queued
behind it, the module's retries. Goal: stall <= lock_timeout + 0.5 s with the module; with psql
the stall lasts as long as the blocker.

Usage (`make venv` first; ~2 min with the defaults, see benchmarks/README.md):
    python3 benchmarks/migrate_lock_impact.py [--duration 20] [--blocker 8] [--reps 2] [--rate 100]

Results (summary.txt, summary.json, each run's ansible output and pgbench log) go to
benchmarks/results/<UTC time>-migrate-lock/ (ignored by git). Not part of `make test`.
"""

import argparse
import glob
import os
import platform
import subprocess
import sys
import textwrap
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import MIGRATE_KEEP, MIGRATE_PLAYBOOK, REPO, BenchBase, median, num, reexec_in_venv, rotated, say, versions, wait_timed  # noqa: E402

VARIANTS = ("module", "psql")
DB = "lockbench"
TEMPLATE = "lockbench_template"
COLUMN = "allergies"
MIGRATION_FILE = "V1__add_allergies.sql"
MIGRATION_SQL = "ALTER TABLE patients ADD COLUMN %s text;\n" % COLUMN
POLL_S = 0.025


# The traffic: pgbench's two scripts, weighted 4:1 on the command line.
UPDATE_SCRIPT = """\
\\set id random(1, :rows)
UPDATE patients SET visits = visits + 1, updated_at = now() WHERE id = :id;
"""
INSERT_SCRIPT = """\
INSERT INTO patients (name, visits, updated_at) VALUES ('walk-in', 0, now());
"""

# What the monitor reads every POLL_S: is an ACCESS EXCLUSIVE request on patients waiting (the
# ALTER), how many other requests wait (the traffic queued behind it), is the column there yet.
MONITOR_SQL = """\
SELECT count(*) FILTER (WHERE mode = 'AccessExclusiveLock'),
       count(*) FILTER (WHERE mode <> 'AccessExclusiveLock'),
       EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = %s AND attname = %s AND NOT attisdropped)
  FROM pg_locks WHERE locktype = 'relation' AND relation = %s AND NOT granted
"""


def percentile(sorted_values, pct):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, int(round(pct / 100.0 * (len(sorted_values) - 1)))))
    return sorted_values[index]


def read_pgbench_log(paths):
    """[(completion time as epoch seconds, latency s, script number)] of pgbench's per-transaction
    log lines `client_id transaction_no time script_no time_epoch time_us [schedule_lag]`."""
    out = []
    for path in paths:
        with open(path) as handle:
            for line in handle:
                fields = line.split()
                if len(fields) < 6 or not fields[2].isdigit():
                    continue  # skipped or failed transactions have no latency
                out.append((int(fields[4]) + int(fields[5]) / 1e6, int(fields[2]) / 1e6, int(fields[3])))
    out.sort()
    return out


def stall_figures(txs):
    """The traffic's figures: count, latency percentiles, the largest latency and the longest gap
    between consecutive completions (with when they ended)."""
    if not txs:
        return {"tx": 0}
    latencies = sorted(t[1] for t in txs)
    worst = max(txs, key=lambda t: t[1])
    gap, gap_end = 0.0, None
    for prev, cur in zip(txs, txs[1:]):
        if cur[0] - prev[0] > gap:
            gap, gap_end = cur[0] - prev[0], cur[0]
    return {"tx": len(txs), "tps": len(txs) / max(1e-9, txs[-1][0] - txs[0][0]),
            "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000,
            "max_latency_s": worst[1], "max_latency_end_t": worst[0], "longest_gap_s": gap, "longest_gap_end_t": gap_end,
            "over_1s": sum(1 for v in latencies if v > 1.0), "first_t": txs[0][0], "last_t": txs[-1][0]}


class Monitor(threading.Thread):
    """Polls pg_locks and pg_attribute every POLL_S: the ALTER's lock waits (intervals), the most
    sessions queued behind it at once, when the new column became visible."""

    def __init__(self, conn, relid):
        super().__init__(daemon=True)
        self.conn = conn
        self.relid = relid
        self.stop = threading.Event()
        self.first_wait = threading.Event()
        self.first_wait_t = None
        self.waits = []
        self.queued_max = 0
        self.column_t = None
        self.error = None

    def run(self):
        since = None
        try:
            with self.conn.cursor() as cur:
                while not self.stop.is_set():
                    now = time.time()
                    cur.execute(MONITOR_SQL, (self.relid, COLUMN, self.relid))
                    alter_waiting, others, column = cur.fetchone()
                    if alter_waiting and since is None:
                        since = now
                        if self.first_wait_t is None:
                            self.first_wait_t = now
                            self.first_wait.set()
                    elif not alter_waiting and since is not None:
                        self.waits.append((since, now))
                        since = None
                    self.queued_max = max(self.queued_max, others)
                    if column and self.column_t is None:
                        self.column_t = now
                    time.sleep(POLL_S)
        except Exception as exc:  # pylint: disable=broad-except
            self.error = str(exc)
        finally:
            if since is not None:
                self.waits.append((since, time.time()))
            self.conn.close()


class Bench(BenchBase):
    def __init__(self, args):
        super().__init__(args, "migrate-lock", subdirs=("project", "pgbench"))
        self.project = os.path.join(self.work, "project")
        self.pgbench_dir = os.path.join(self.work, "pgbench")

    # -- setup ----------------------------------------------------------------------------
    def prepare(self):
        self.start_server()
        self.psql_version = self.tool_version("psql")
        self.pgbench_version = self.tool_version("pgbench")
        self.prepare_ansible({"migrate.yml": MIGRATE_PLAYBOOK}, keep=MIGRATE_KEEP)
        with open(os.path.join(self.project, MIGRATION_FILE), "w") as handle:
            handle.write(MIGRATION_SQL)
        with open(os.path.join(self.pgbench_dir, "update.sql"), "w") as handle:
            handle.write(UPDATE_SCRIPT)
        with open(os.path.join(self.pgbench_dir, "insert.sql"), "w") as handle:
            handle.write(INSERT_SCRIPT)
        # psql over TCP+SSL like the module; the password in a passfile only we can read.
        self.passfile = os.path.join(self.work, "pgpass")
        fd = os.open(self.passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            escaped = self.info["superuser_password"].replace("\\", "\\\\").replace(":", "\\:")
            handle.write("%s:%d:*:postgres:%s\n" % (self.info["host"], self.info["port"], escaped))
        self.psql_env = dict(self.pg_env, PGPASSFILE=self.passfile, PGSSLMODE="require")
        p = self.cluster.primary
        p.execute("CREATE DATABASE %s" % TEMPLATE)
        p.execute("CREATE TABLE patients (id bigserial PRIMARY KEY, name text NOT NULL, visits int NOT NULL DEFAULT 0, "
                  "updated_at timestamptz NOT NULL DEFAULT now())", dbname=TEMPLATE)
        p.execute("INSERT INTO patients (name, visits) SELECT 'patient ' || g, 0 FROM generate_series(1, %s) g",
                  (self.args.rows,), dbname=TEMPLATE)
        p.execute("VACUUM ANALYZE patients", dbname=TEMPLATE)
        p.execute("CHECKPOINT")
        say("   %s: table patients, %d rows (each run gets a fresh copy, %s)" % (TEMPLATE, self.args.rows, DB))

    def fresh_database(self):
        p = self.cluster.primary
        p.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)
        p.execute("CREATE DATABASE %s TEMPLATE %s" % (DB, TEMPLATE))
        p.execute("CHECKPOINT")
        return p.execute("SELECT 'patients'::regclass::oid", dbname=DB)[0][0]

    # -- the migration, either way ---------------------------------------------------------
    def migrate_module(self, name):
        values = dict(self.connection_values(), bench_db=DB, bench_project=self.project,
                      bench_lock_timeout="%gs" % self.args.lock_timeout, bench_lock_retries=self.args.lock_retries)
        run = self.run_playbook(name, "migrate.yml", values)
        res = run["res"]
        applied = res.get("applied") or []
        return {"ok": run["ok"], "error": run["error"], "wall_s": run["playbook_s"], "task_s": run["task_s"],
                "module_s": run["module_s"], "retries": res.get("retries") or [],
                "applied_s": applied[0].get("duration_s") if applied else None}

    def migrate_psql(self, name):
        argv = [os.path.join(self.bindir, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-h", self.info["host"],
                "-p", str(self.info["port"]), "-U", "postgres", "-d", DB, "-f", os.path.join(self.project, MIGRATION_FILE)]
        returncode, wall, dummy_cpu, dummy_rss, err = wait_timed(argv, self.psql_env, os.path.join(self.work, name + ".stderr"))
        return {"ok": returncode == 0, "error": None if returncode == 0 else (err or "psql exit %d" % returncode),
                "wall_s": wall, "task_s": wall, "module_s": None, "retries": [], "applied_s": None}

    # -- one run ------------------------------------------------------------------------------
    def run_once(self, variant, rep):
        args = self.args
        name = self.next_name("%s-rep%d" % (variant, rep + 1))
        relid = self.fresh_database()
        p = self.cluster.primary
        monitor = Monitor(p.connect(DB), relid)
        monitor.start()
        blocker = p.connect(DB)
        blocker.cursor().execute("BEGIN; SELECT count(*) FROM patients")
        blocker_t = time.time()
        prefix = os.path.join(self.pgbench_dir, name)
        argv = ([os.path.join(self.bindir, "pgbench"), "-n", "-c", str(args.clients), "-j", "1", "-T", str(args.duration),
                 "-l", "--log-prefix", prefix, "-f", os.path.join(self.pgbench_dir, "update.sql") + "@4",
                 "-f", os.path.join(self.pgbench_dir, "insert.sql") + "@1", "-D", "rows=%d" % args.rows]
                + (["-R", str(args.rate)] if args.rate else []) + self.socket_args() + [DB])
        traffic_t = time.time()
        with open(prefix + ".out", "w") as out:
            pgbench = subprocess.Popen(argv, env=self.pg_env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                       cwd=self.pgbench_dir)
        finished = threading.Event()
        released = {}

        def release():
            # Hold the blocker --blocker seconds from the ALTER's first lock wait (or give up when the
            # migration ended without one, or nothing waited within the traffic's duration).
            deadline = time.time() + args.duration + 30
            while not monitor.first_wait.is_set() and not finished.is_set() and time.time() < deadline:
                monitor.first_wait.wait(0.01)
            if monitor.first_wait_t is not None:
                time.sleep(max(0.0, monitor.first_wait_t + args.blocker - time.time()))
            blocker.cursor().execute("COMMIT")
            released["t"] = time.time()

        releaser = threading.Thread(target=release, daemon=True)
        time.sleep(args.lead)
        releaser.start()
        launch_t = time.time()
        try:
            mig = self.migrate_module(name) if variant == "module" else self.migrate_psql(name)
        finally:
            end_t = time.time()
            finished.set()
            releaser.join(args.duration + 60)
            blocker.close()
            try:
                pgbench.wait(timeout=args.duration + 60)
            except subprocess.TimeoutExpired:
                pgbench.kill()
                pgbench.wait()
            time.sleep(4 * POLL_S)
            monitor.stop.set()
            monitor.join(10)
        txs = read_pgbench_log(sorted(glob.glob(prefix + ".[0-9]*")))
        traffic = stall_figures(txs)
        ok = mig["ok"] and pgbench.returncode == 0 and traffic["tx"] > 0 and monitor.column_t is not None
        error = mig["error"]
        if not ok and error is None:
            error = ("pgbench exit %d (see %s.out)" % (pgbench.returncode, os.path.relpath(prefix, REPO))
                     if pgbench.returncode else "no transaction logged" if not traffic["tx"] else "column not added")
        first = monitor.first_wait_t
        rec = {"name": name, "variant": variant, "rep": rep, "loadavg_1m": os.getloadavg()[0], "ok": ok, "error": error,
               "warnings": [], "traffic_start_t": traffic_t, "blocker_t": blocker_t, "launch_t": launch_t, "end_t": end_t,
               "first_wait_t": first, "released_t": released.get("t"), "column_t": monitor.column_t,
               "blocker_held_s": released["t"] - first if first and released.get("t") else None,
               "lock_waits": [(a - traffic_t, b - traffic_t) for a, b in monitor.waits],
               "alter_waits": len(monitor.waits), "longest_wait_s": max([b - a for a, b in monitor.waits] or [None]),
               "queued_max": monitor.queued_max, "monitor_error": monitor.error,
               "to_success_s": monitor.column_t - launch_t if monitor.column_t else None,
               "first_wait_to_success_s": monitor.column_t - first if monitor.column_t and first else None,
               "pgbench_rc": pgbench.returncode}
        rec.update(mig)
        rec.update(traffic)
        rec["stall_s"] = max(traffic.get("max_latency_s") or 0, traffic.get("longest_gap_s") or 0) if traffic["tx"] else None
        if first is None:
            rec["warnings"].append("the ALTER was never seen waiting for its lock")
        if monitor.column_t and traffic["tx"] and traffic["last_t"] < monitor.column_t + 1.0:
            rec["warnings"].append("the traffic ended %.1f s after the column appeared (< 1 s): raise --duration"
                                   % (traffic["last_t"] - monitor.column_t))
        self.runs.append(rec)

        def rel(t):
            return "%.1f" % (t - traffic_t) if t else "-"

        say("   %-18s %s stall %s s (max latency %s s, longest gap %s s)  migration %s s to success, %d lock wait(s),"
            " longest %s s, up to %d session(s) queued%s"
            % (name, "ok    " if ok else "FAILED", num(rec["stall_s"], "%.2f"), num(rec.get("max_latency_s"), "%.2f"),
               num(rec.get("longest_gap_s"), "%.2f"), num(rec["to_success_s"], "%.2f"), rec["alter_waits"],
               num(rec["longest_wait_s"], "%.2f"), rec["queued_max"], "" if ok else "  " + str(error)))
        say("      timeline (s from traffic start): migration launched %s, first lock wait %s, blocker released %s,"
            " column visible %s, migration ended %s, traffic %s-%s; lock waits %s"
            % (rel(launch_t), rel(first), rel(released.get("t")), rel(monitor.column_t), rel(end_t),
               rel(traffic.get("first_t")), rel(traffic.get("last_t")),
               ", ".join("%.1f-%.1f" % w for w in rec["lock_waits"]) or "none"))
        if rec["retries"]:
            waits = ["#%d after %.2f s" % (r.get("attempt", 0), r.get("waited_s", 0)) for r in rec["retries"]]
            say("      module retries: %s" % ", ".join(waits))
        for warning in rec["warnings"]:
            say("      warning: %s" % warning)
        return rec

    # -- report -------------------------------------------------------------------------------
    def report(self, meta):
        args = self.args
        lines = []
        add = lines.append
        add("")
        add("Lock impact: ALTER TABLE patients ADD COLUMN behind a %gs blocker, under pgbench write traffic (%d clients, %s,"
            " -T %d); pgops.runbook.migrate (lock_timeout %gs, lock_retries %d) vs psql (no lock_timeout); %d rep(s)"
            % (args.blocker, args.clients, "%d tx/s" % args.rate if args.rate else "unthrottled", args.duration,
               args.lock_timeout, args.lock_retries, args.reps))
        add("server PostgreSQL %s; %s; %s; ansible-core %s; Python %s"
            % (self.server_version, self.psql_version, self.pgbench_version, self.ansible_core, platform.python_version()))
        low = min([r["loadavg_1m"] for r in self.runs] or [0])
        high = max([r["loadavg_1m"] for r in self.runs] or [0])
        add("%d CPUs; load average %.2f at start, %.2f at end, %.2f-%.2f after the runs (other work on the machine"
            " skews times)" % (os.cpu_count(), meta["loadavg_start"][0], meta["loadavg_end"][0], low, high))
        add("")
        head = ("%-18s %-6s %7s %10s %8s %7s %7s %6s %6s %6s %8s %7s %9s %10s %7s %7s"
                % ("run", "ok", "stall_s", "max_lat_s", "gap_s", "p50_ms", "p99_ms", "tx", "tx>1s", "queued", "blocker",
                   "waits", "longest_w", "success_s", "w->ok_s", "retries"))
        add(head)
        add("-" * len(head))
        for r in self.runs:
            add("%-18s %-6s %7s %10s %8s %7s %7s %6s %6s %6s %8s %7s %9s %10s %7s %7s" % (
                r["name"], "ok" if r["ok"] else "FAILED", num(r["stall_s"], "%.2f"), num(r.get("max_latency_s"), "%.2f"),
                num(r.get("longest_gap_s"), "%.2f"), num(r.get("p50_ms"), "%.1f"), num(r.get("p99_ms"), "%.0f"), r["tx"],
                r.get("over_1s", "-"), r["queued_max"], num(r["blocker_held_s"], "%.1f"), r["alter_waits"],
                num(r["longest_wait_s"], "%.2f"), num(r["to_success_s"], "%.2f"), num(r["first_wait_to_success_s"], "%.2f"),
                len(r["retries"]) if r["variant"] == "module" else "-"))
        add("  stall = max(max_lat, gap): max_lat = the largest latency in pgbench's per-transaction log (from the")
        add("  transaction's scheduled start); gap = the longest time between two consecutive completed transactions;")
        add("  queued = most sessions waiting behind the ALTER at once; blocker = how long the blocker was held after the")
        add("  ALTER's first lock wait; waits / longest_w = the ALTER's lock waits (pg_locks, every %d ms); success_s ="
            % (POLL_S * 1000))
        add("  from the migration's launch (ansible-playbook or psql) to the column being visible; w->ok = from the")
        add("  first lock wait to that; retries = the module's result.")
        add("")
        sums = {}
        for variant in VARIANTS:
            good = [r for r in self.runs if r["variant"] == variant and r["ok"]]
            sums[variant] = {
                "runs": len([r for r in self.runs if r["variant"] == variant]), "ok": len(good),
                "stall_s_max": max([r["stall_s"] for r in good] or [None]), "stall_s": median([r["stall_s"] for r in good]),
                "max_latency_s": median([r.get("max_latency_s") for r in good]),
                "longest_gap_s": median([r.get("longest_gap_s") for r in good]),
                "to_success_s": median([r["to_success_s"] for r in good]),
                "first_wait_to_success_s": median([r["first_wait_to_success_s"] for r in good]),
                "blocker_held_s": median([r["blocker_held_s"] for r in good]),
                "task_s": median([r["task_s"] for r in good]),
                "retries": median([len(r["retries"]) for r in good]) if good else None,
                "alter_waits": median([r["alter_waits"] for r in good]),
            }
        goal = args.lock_timeout + 0.5
        m, q = sums["module"], sums["psql"]
        add("medians (worst stall in brackets):")
        for variant in VARIANTS:
            s = sums[variant]
            add("  %-7s %d/%d ok; stall %s s [worst %s s] (max latency %s s, longest gap %s s); migration %s s from"
                " launch to success (%s s from its first lock wait), %s lock wait(s)%s"
                % (variant, s["ok"], s["runs"], num(s["stall_s"], "%.2f"), num(s["stall_s_max"], "%.2f"),
                   num(s["max_latency_s"], "%.2f"), num(s["longest_gap_s"], "%.2f"), num(s["to_success_s"], "%.2f"),
                   num(s["first_wait_to_success_s"], "%.2f"), num(s["alter_waits"], "%g"),
                   ", %s retries" % num(s["retries"], "%g") if variant == "module" else ""))
        verdict = {"goal_s": goal}
        if m["stall_s_max"] is not None:
            verdict["module_met"] = m["stall_s_max"] <= goal
            add("verdict: module: worst stall %.2f s <= lock_timeout + 0.5 = %.2f s -> %s"
                % (m["stall_s_max"], goal, "goal met" if verdict["module_met"] else "goal NOT met"))
        if q["stall_s"] is not None:
            verdict["psql_vs_blocker"] = q["stall_s"] / q["blocker_held_s"] if q["blocker_held_s"] else None
            add("verdict: psql:   stall %.2f s against a blocker held %s s after the ALTER queued (%s of it): the traffic"
                " waits as long as the blocker" % (q["stall_s"], num(q["blocker_held_s"], "%.1f"),
                                                   num(verdict["psql_vs_blocker"], "%.2fx")))
        if m["stall_s"] is not None and q["stall_s"]:
            verdict["stall_ratio"] = m["stall_s"] / q["stall_s"]
            verdict["success_delay_s"] = (m["first_wait_to_success_s"] - q["first_wait_to_success_s"]
                                          if None not in (m["first_wait_to_success_s"], q["first_wait_to_success_s"])
                                          else None)
            add("  the module's stall is %.2fx psql's; from the first lock wait to success: module %s s, psql %s s"
                " (difference %s s: what the retries' waits cost)"
                % (verdict["stall_ratio"], num(m["first_wait_to_success_s"], "%.2f"), num(q["first_wait_to_success_s"], "%.2f"),
                   num(verdict["success_delay_s"], "%+.2f")))
        warned = [r for r in self.runs if r["warnings"]]
        failed = [r for r in self.runs if not r["ok"]]
        if warned or failed:
            add("")
        for r in failed:
            add("  %s failed (not in the medians): %s" % (r["name"], r["error"]))
        for r in warned:
            add("  %s: %s" % (r["name"], "; ".join(r["warnings"])))
        text = "\n".join(lines)
        print(text, flush=True)
        return text, sums, verdict


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
        say("== %d rep(s) of each variant, alternating: traffic -T %d, blocker held %g s from the ALTER's first lock wait"
            " (load %.2f)" % (args.reps, args.duration, args.blocker, os.getloadavg()[0]))
        for rep in range(args.reps):
            for variant in rotated(VARIANTS, rep):
                bench.run_once(variant, rep)
    finally:
        if getattr(bench, "passfile", None) and os.path.exists(bench.passfile):
            os.unlink(bench.passfile)
        bench.cleanup()
    meta["loadavg_end"] = os.getloadavg()
    meta["total_s"] = round(time.monotonic() - t_start, 1)
    text, sums, verdict = bench.report(meta)
    bench.write_results(text, {"meta": meta, "summaries": sums, "verdict": verdict, "runs": bench.runs})
    say("load average at end: %.2f %.2f %.2f" % tuple(meta["loadavg_end"]))
    say("total %.0f s; details in %s" % (meta["total_s"], os.path.relpath(bench.out_dir, REPO)))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=textwrap.dedent(__doc__.split("\n\n", 1)[1]))
    parser.add_argument("--duration", type=int, default=20, help="pgbench -T: seconds of traffic per run (default 20)")
    parser.add_argument("--blocker", type=float, default=8.0,
                        help="seconds the blocker is held after the ALTER's first lock wait (default 8)")
    parser.add_argument("--lead", type=float, default=2.0,
                        help="seconds of traffic before the migration is launched (default 2)")
    parser.add_argument("--reps", type=int, default=2, help="runs of each variant, alternating (default 2)")
    parser.add_argument("--clients", type=int, default=2, help="pgbench clients (default 2)")
    parser.add_argument("--rate", type=int, default=100, help="pgbench -R, transactions per second; 0: unthrottled (default 100)")
    parser.add_argument("--rows", type=int, default=10000, help="rows of patients (default 10000)")
    parser.add_argument("--lock-timeout", type=float, default=2.0, help="the module's lock_timeout in seconds (default 2)")
    parser.add_argument("--lock-retries", type=int, default=10, help="the module's lock_retries (default 10)")
    parser.add_argument("--results-dir", help="default: benchmarks/results/<UTC time>-migrate-lock")
    args = parser.parse_args(argv)
    reexec_in_venv(__file__, argv)
    return stage2(args)


if __name__ == "__main__":
    sys.exit(main())
