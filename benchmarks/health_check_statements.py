"""SQL statements sent and wall time: pgops.runbook.health_check vs postgresql_info.

Side by side in the same run, against the same throw-away PostgreSQL server and the
same database, through the same ansible-playbook (from the benchmark's own virtualenv
benchmarks/.venv, which holds the full `ansible` package, hence community.postgresql):

  * `pgops.runbook.health_check` (this repository, found through a symlink tree at
    <repo>/.build/collections, first in ANSIBLE_COLLECTIONS_PATH);
  * `community.postgresql.postgresql_info` (default filter: gathers everything).

Two phases, with the same databases present in both (bench100 and bench10k are both
created up front): bench100 filled with 100 tables, then bench10k filled with 10,000.

Statements are counted on the server, the same way for both tools: each tool logs in
as a dedicated superuser role `bench_counter` that carries `log_statement = 'all'`
(ALTER ROLE ... SET), so the server logs every query message it receives from that
role and nobody else's; the script counts those log lines between the byte offsets of
the log before and after each run. pg_stat_statements deltas (reset before each run,
summed over bench_counter) are printed beside it as a cross-check.

Usage (no argument needed; ~40 s on 2 cores, plus ~30 s for the venv the first time):
    python3 benchmarks/health_check_statements.py [--reps 3] [--small 100] [--large 10000]

Results (a JSON summary, each run's ansible output, each run's logged statements)
go to benchmarks/results/<UTC time>/ (ignored by git). Not part of `make test`.
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import secrets
import statistics
import subprocess
import sys
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VENV = os.path.join(HERE, ".venv")
VENV_PYTHON = os.path.join(VENV, "bin", "python")
REQUIREMENTS = os.path.join(HERE, "requirements.txt")
STAMP = os.path.join(VENV, ".bench-stamp")
HEALTH_CHECK_FILE = os.path.join(REPO, "plugins", "modules", "health_check.py")
COLLECTIONS_ROOT = os.path.join(REPO, ".build", "collections")
COLLECTION_LINK = os.path.join(COLLECTIONS_ROOT, "ansible_collections", "pgops", "runbook")

BENCH_ROLE = "bench_counter"
TOOLS = ("postgresql_info", "health_check", "health_check_noseq")
FQCN = {
    "postgresql_info": "community.postgresql.postgresql_info",
    "health_check": "pgops.runbook.health_check",
    # The same module without sequence_exhaustion: postgresql_info reads no sequence
    # values, and reading one costs ~20 us server-side (relcache, lock, buffer).
    "health_check_noseq": "pgops.runbook.health_check",
}
EXTRA_ARGS = {
    "health_check_noseq": "        skip_checks: [sequence_exhaustion]\n",
}
PLAYBOOK_TIMEOUT = 900


def say(msg):
    print(msg, flush=True)


# --------------------------------------------------------------------------------------
# Stage 1 (any python3): the benchmark virtualenv, then re-run this script inside it.
# --------------------------------------------------------------------------------------

def _stamp_text(python):
    with open(REQUIREMENTS, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    version = subprocess.run([python, "-c", "import sys; print(sys.version)"],
                             check=True, capture_output=True, text=True).stdout.strip()
    return "requirements sha256 %s\npython %s\n" % (digest, version)


def ensure_venv(base_python):
    """Create benchmarks/.venv and install requirements.txt, unless the stamp says it is done."""
    if os.path.exists(VENV_PYTHON):
        try:
            wanted = _stamp_text(VENV_PYTHON)
            with open(STAMP) as handle:
                if handle.read() == wanted:
                    return
        except (OSError, subprocess.CalledProcessError):
            pass
    say("== preparing the benchmark virtualenv %s (once; ~30 s)" % os.path.relpath(VENV, REPO))
    if not os.path.exists(VENV_PYTHON) or subprocess.run([VENV_PYTHON, "-c", "pass"], check=False).returncode != 0:
        subprocess.run([base_python, "-m", "venv", "--clear", VENV], check=True)
    subprocess.run([VENV_PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "-r", REQUIREMENTS], check=True)
    with open(STAMP, "w") as handle:
        handle.write(_stamp_text(VENV_PYTHON))


def in_bench_venv():
    return os.path.realpath(sys.prefix) == os.path.realpath(VENV)


# --------------------------------------------------------------------------------------
# Stage 2 (inside the venv): the server, the databases, the runs.
# --------------------------------------------------------------------------------------

POPULATE_SQL = """
DO $bench$
DECLARE
    n      int := %(tables)d;
    batch  int := %(batch)d;
    width  int := length(n::text);
    t      text;
    prev   text;
    fk     boolean;
BEGIN
    FOR i IN 1..n LOOP
        t := 't' || lpad(i::text, width, '0');
        prev := 't' || lpad((i - 1)::text, width, '0');
        fk := i %% 10 = 0;
        EXECUTE format(
            'CREATE TABLE public.%%I (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, '
            'name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now()%%s)',
            t, CASE WHEN fk THEN format(', parent_id bigint REFERENCES public.%%I (id)', prev) ELSE '' END);
        EXECUTE format('CREATE INDEX %%I ON public.%%I (created_at)', t || '_created_at_idx', t);
        IF fk THEN
            EXECUTE format('INSERT INTO public.%%I (name, parent_id) '
                           'SELECT ''row '' || g, g FROM generate_series(1, 3) AS g', t);
        ELSE
            EXECUTE format('INSERT INTO public.%%I (name) '
                           'SELECT ''row '' || g FROM generate_series(1, 3) AS g', t);
        END IF;
        -- One transaction per batch: a single one would exhaust the shared lock table
        -- (max_locks_per_transaction x max_connections) with 10,000 tables.
        IF i %% batch = 0 THEN
            COMMIT;
        END IF;
    END LOOP;
END
$bench$;
"""

CALLBACK_PLUGIN = '''
# Written by benchmarks/health_check_statements.py: records each task's start/end time
# and the few result keys the benchmark reads, one JSON line per task result.
from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: bench_timing
type: aggregate
short_description: task timings for the pgops benchmark
description: Appends one JSON line per task result to the file in BENCH_TIMING_FILE.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timing"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._path = os.environ["BENCH_TIMING_FILE"]
        self._task_start = {}
        self._runner_start = {}

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task_start[task._uuid] = time.time()

    def v2_runner_on_start(self, host, task):
        self._runner_start[task._uuid] = time.time()

    def _record(self, result, status):
        end = time.time()
        task = result._task
        res = result._result
        keep = dict((k, res[k]) for k in ("statements", "duration_s", "msg", "failed", "changed") if k in res)
        try:
            size = len(json.dumps(res, default=str))
        except Exception:
            size = None
        rec = dict(task=task.get_name(), action=task.action, status=status,
                   task_start=self._task_start.get(task._uuid),
                   runner_start=self._runner_start.get(task._uuid),
                   end=end, result=keep, result_bytes=size)
        with open(self._path, "a") as handle:
            handle.write(json.dumps(rec, default=str) + "\\n")

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")
'''

# The module's interpreter, as seen by Ansible: runs the venv python as a child and
# records that child's wall time and peak RSS (wait4 rusage: the child and the
# descendants it waited for). Costs one extra, site-less Python start (~15 ms) for
# both tools alike.
WRAPPER = '''#!%(python)s -SE
import json, os, sys, time
t0 = time.monotonic()
pid = os.fork()
if pid == 0:
    os.execv(%(python)r, [%(python)r] + sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
t1 = time.monotonic()
with open(%(record)r, "a") as handle:
    handle.write(json.dumps({"wall_s": t1 - t0, "maxrss_kb": usage.ru_maxrss,
                             "args": sys.argv[1:]}) + "\\n")
sys.exit(os.waitstatus_to_exitcode(status))
'''

PLAYBOOK = """\
- name: Benchmark {fqcn}
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Run {fqcn}
      {fqcn}:
        login_host: "{{{{ bench_host }}}}"
        login_port: "{{{{ bench_port }}}}"
        login_user: "{{{{ bench_user }}}}"
        login_password: "{{{{ bench_password }}}}"
        login_db: "{{{{ bench_db }}}}"
        ssl_mode: require
"""

# log_line_prefix '%m [%p] %q%u@%d ': "2025-01-31 12:00:00.123 UTC [4242] bench_counter@bench10k LOG:  ..."
LOG_LINE = re.compile(r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) \S+ \[(?P<pid>\d+)\] "
                      r"(?P<user>\S*)@(?P<db>\S*) (?P<level>\w+):  (?P<msg>.*)$")


def log_time(match):
    """Seconds since the epoch of a log line's %m stamp (its zone is the same on every line)."""
    stamp = datetime.datetime.strptime(match.group("ts"), "%Y-%m-%d %H:%M:%S.%f")
    return stamp.replace(tzinfo=datetime.timezone.utc).timestamp()


def failure_line(stdout, stderr):
    """The first line of ansible-playbook's output that says what went wrong."""
    for text in (stderr, stdout):
        for line in text.splitlines():
            if "ERROR" in line or "FAILED" in line or "fatal:" in line:
                return line.strip()[:300]
    return (stderr.strip() or stdout.strip() or "no output")[-300:]


def versions():
    out = {"python": platform.python_version()}
    for dist in ("ansible", "ansible-core", "psycopg2-binary"):
        try:
            from importlib.metadata import version
            out[dist] = version(dist)
        except Exception:
            out[dist] = None
    try:
        import ansible_collections.community.postgresql as cp
        with open(os.path.join(os.path.dirname(cp.__path__[0]), "postgresql", "MANIFEST.json")) as handle:
            out["community.postgresql"] = json.load(handle)["collection_info"]["version"]
    except Exception:
        out["community.postgresql"] = None
    return out


def site_packages():
    import ansible
    return os.path.dirname(os.path.dirname(ansible.__file__))


def ensure_collection_link():
    """<repo>/.build/collections/ansible_collections/pgops/runbook -> the repo root."""
    if os.path.lexists(COLLECTION_LINK):
        if os.path.realpath(COLLECTION_LINK) != os.path.realpath(REPO):
            raise SystemExit("%s exists but does not lead to %s; move it away and re-run"
                             % (COLLECTION_LINK, REPO))
        return
    os.makedirs(os.path.dirname(COLLECTION_LINK), exist_ok=True)
    try:
        os.symlink(REPO, COLLECTION_LINK)
    except FileExistsError:  # created meanwhile by someone else: check it again
        ensure_collection_link()


class Bench:
    def __init__(self, args):
        self.args = args
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.out_dir = os.path.abspath(args.results_dir or os.path.join(HERE, "results", stamp))
        self.work = os.path.join(self.out_dir, "work")
        os.makedirs(os.path.join(self.work, "callback_plugins"), exist_ok=True)
        os.makedirs(os.path.join(self.work, "home"), exist_ok=True)
        os.makedirs(os.path.join(self.work, "tmp"), exist_ok=True)
        self.password = secrets.token_urlsafe(24)
        self.cluster = None
        self.runs = []
        self.run_no = 0
        self.availability = {}

    # -- server ------------------------------------------------------------------
    def start_server(self):
        sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
        from cluster import Cluster
        self.cluster = Cluster()
        self.cluster.start_primary()
        self.info = self.cluster.describe()
        self.log_file = os.path.join(self.info["base_dir"], "primary.log")
        p = self.cluster.primary
        p.execute("ALTER SYSTEM SET log_line_prefix = '%m [%p] %q%u@%d '")
        p.execute("SELECT pg_reload_conf()")
        deadline = time.time() + 10
        while p.execute("SHOW log_line_prefix")[0][0] != "%m [%p] %q%u@%d ":
            if time.time() > deadline:
                raise RuntimeError("log_line_prefix was not reloaded")
            time.sleep(0.1)
        conn = p.connect()
        with conn.cursor() as cur:
            cur.execute("CREATE ROLE %s LOGIN SUPERUSER PASSWORD %%s" % BENCH_ROLE, (self.password,))
            cur.execute("ALTER ROLE %s SET log_statement = 'all'" % BENCH_ROLE)
            cur.execute("ALTER ROLE %s SET log_min_duration_statement = 0" % BENCH_ROLE)
            cur.execute("CREATE DATABASE bench%d" % self.args.small)
            cur.execute("CREATE DATABASE bench%s" % self.db_suffix(self.args.large))
        conn.close()
        self.server_version = p.execute("SHOW server_version")[0][0]

    @staticmethod
    def db_suffix(tables):
        return "10k" if tables == 10000 else str(tables)

    def db_name(self, tables):
        return "bench" + self.db_suffix(tables)

    def populate(self, tables):
        db = self.db_name(tables)
        t0 = time.monotonic()
        p = self.cluster.primary
        p.execute(POPULATE_SQL % {"tables": tables, "batch": self.args.batch}, dbname=db)
        t1 = time.monotonic()
        p.execute("ANALYZE", dbname=db)
        p.execute("CHECKPOINT")
        t2 = time.monotonic()
        count = p.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                          "WHERE n.nspname = 'public' AND c.relkind = 'r'", dbname=db)[0][0]
        size = p.execute("SELECT pg_size_pretty(pg_database_size(%s))", (db,))[0][0]
        say("   %s: %d tables created in %.1f s, ANALYZE + CHECKPOINT %.1f s, size %s"
            % (db, count, t1 - t0, t2 - t1, size))
        return {"db": db, "tables": count, "create_s": round(t1 - t0, 2), "analyze_s": round(t2 - t1, 2),
                "size": size}

    # -- ansible -----------------------------------------------------------------
    def prepare_ansible(self):
        with open(os.path.join(self.work, "callback_plugins", "bench_timing.py"), "w") as handle:
            handle.write(CALLBACK_PLUGIN)
        self.module_record = os.path.join(self.work, "module_process.jsonl")
        self.wrapper = os.path.join(self.work, "python-wrapper")
        real = os.path.join(VENV, "bin", "python")
        with open(self.wrapper, "w") as handle:
            handle.write(WRAPPER % {"python": real, "record": self.module_record})
        os.chmod(self.wrapper, 0o755)
        with open(os.path.join(self.work, "inventory.ini"), "w") as handle:
            handle.write("localhost ansible_connection=local ansible_python_interpreter=%s\n" % self.wrapper)
        with open(os.path.join(self.work, "ansible.cfg"), "w") as handle:
            handle.write("[defaults]\nretry_files_enabled = false\n")
        for tool in TOOLS:
            with open(os.path.join(self.work, tool + ".yml"), "w") as handle:
                handle.write(PLAYBOOK.format(fqcn=FQCN[tool]) + EXTRA_ARGS.get(tool, ""))
        self.env = dict((k, v) for k, v in os.environ.items() if not k.startswith(("PG", "ANSIBLE_")))
        self.env.update({
            "PATH": os.path.join(VENV, "bin") + os.pathsep + os.environ.get("PATH", ""),
            "HOME": os.path.join(self.work, "home"),
            "ANSIBLE_CONFIG": os.path.join(self.work, "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS_ROOT + os.pathsep + site_packages(),
            "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
            "ANSIBLE_CALLBACK_PLUGINS": os.path.join(self.work, "callback_plugins"),
            "ANSIBLE_CALLBACKS_ENABLED": "bench_timing",
            "ANSIBLE_LOCAL_TEMP": os.path.join(self.work, "tmp"),
            "ANSIBLE_REMOTE_TEMP": os.path.join(self.work, "tmp"),
            "ANSIBLE_NOCOLOR": "1",
        })

    def vars_file(self, tables):
        path = os.path.join(self.work, "vars-%s.json" % self.db_name(tables))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"bench_host": self.info["host"], "bench_port": self.info["port"],
                       "bench_user": BENCH_ROLE, "bench_password": self.password,
                       "bench_db": self.db_name(tables)}, handle)
        return path

    # -- counting ----------------------------------------------------------------
    def pgss_reset(self):
        self.cluster.primary.execute("SELECT pg_stat_statements_reset()", dbname="appdb")

    def pgss_calls(self):
        rows = self.cluster.primary.execute(
            "SELECT coalesce(sum(s.calls), 0)::bigint, count(*) FROM pg_stat_statements s "
            "JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = %s", (BENCH_ROLE,), dbname="appdb")
        return int(rows[0][0]), int(rows[0][1])

    def read_log(self, offset, run_name):
        """Our role's log lines written since `offset`: statements, connections, errors."""
        with open(self.log_file, "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", "replace")
        # A logged statement may span lines: continuation lines carry no prefix.
        entries = []
        for line in text.splitlines():
            m = LOG_LINE.match(line)
            if m:
                entries.append([m, [line]])
            elif entries:
                entries[-1][1].append(line)
        stmts, first_words, conns, errors, dbs, kept = 0, {}, 0, [], set(), []
        timed, last_by_pid = [], {}
        for m, raw in entries:
            if m.group("user") != BENCH_ROLE:
                continue
            pid, level, msg = m.group("pid"), m.group("level"), "\n".join([m.group("msg")] + raw[1:])
            kept.extend(raw)
            if level == "LOG" and (msg.startswith("statement: ") or msg.startswith("execute ")):
                stmts += 1
                dbs.add(m.group("db"))
                body = msg.split(":", 1)[1] if ":" in msg else msg
                word = (body.split(None, 1) or ["?"])[0].upper().rstrip(";")
                first_words[word] = first_words.get(word, 0) + 1
                last_by_pid[pid] = [None, " ".join(body.split()), log_time(m)]
                timed.append(last_by_pid[pid])
            elif level == "LOG" and msg.startswith("duration: "):
                # log_min_duration_statement = 0 for the role: the server-side time of the
                # statement this session logged last (its text is not repeated).
                if pid in last_by_pid and last_by_pid[pid][0] is None:
                    last_by_pid[pid][0] = float(msg.split()[1])
            elif level == "LOG" and msg.startswith("connection authorized"):
                conns += 1
            elif level in ("ERROR", "FATAL"):
                failing = last_by_pid[pid][1][:120] if pid in last_by_pid else "?"
                if pid in last_by_pid and last_by_pid[pid][0] is None:
                    # A failed statement logs no duration: take the time from it to its error.
                    last_by_pid[pid][0] = max(0.0, (log_time(m) - last_by_pid[pid][2]) * 1000.0)
                    last_by_pid[pid][1] = "[failed] " + last_by_pid[pid][1]
                errors.append("%s (in: %s)" % (msg.split("\n", 1)[0], failing))
        with open(os.path.join(self.out_dir, run_name + ".server-log.txt"), "w") as handle:
            handle.write("\n".join(kept) + "\n")
        tx = sum(first_words.get(w, 0) for w in ("BEGIN", "COMMIT", "ROLLBACK", "START", "END"))
        durations = [t for t in timed if t[0] is not None]
        slowest = sorted(durations, key=lambda t: -t[0])[:5]
        return {"statements": stmts, "tx_control": tx, "connections": conns, "databases": sorted(dbs),
                "errors": errors, "first_words": dict(sorted(first_words.items(), key=lambda kv: -kv[1])),
                "sql_s": sum(t[0] for t in durations) / 1000.0 if durations else None,
                "slowest": [{"ms": t[0], "sql": t[1][:300]} for t in slowest]}

    # -- one run -----------------------------------------------------------------
    def run(self, tool, tables, warmup=False):
        self.run_no += 1
        run_name = "%02d-%s-%s%s" % (self.run_no, tool, self.db_name(tables), "-warmup" if warmup else "")
        timing_file = os.path.join(self.work, run_name + ".timing.jsonl")
        env = dict(self.env, BENCH_TIMING_FILE=timing_file)
        for path in (self.module_record,):
            if os.path.exists(path):
                os.unlink(path)
        self.pgss_reset()
        offset = os.path.getsize(self.log_file)
        argv = [os.path.join(VENV, "bin", "ansible-playbook"), "-i", os.path.join(self.work, "inventory.ini"),
                os.path.join(self.work, tool + ".yml"), "-e", "@" + self.vars_file(tables)]
        t0 = time.monotonic()
        proc = subprocess.run(argv, env=env, cwd=self.work, capture_output=True, text=True,
                              timeout=PLAYBOOK_TIMEOUT, check=False)
        wall = time.monotonic() - t0
        with open(os.path.join(self.out_dir, run_name + ".ansible.txt"), "w") as handle:
            handle.write("$ %s\nrc=%d\n--- stdout\n%s\n--- stderr\n%s"
                         % (" ".join(argv), proc.returncode, proc.stdout, proc.stderr))
        counted = self.read_log(offset, run_name)
        pgss_calls, pgss_entries = self.pgss_calls()
        task = None
        if os.path.exists(timing_file):
            with open(timing_file) as handle:
                recs = [json.loads(line) for line in handle if line.strip()]
            task = next((r for r in recs if r["action"].endswith(tool)), recs[-1] if recs else None)
        module_proc = None
        if os.path.exists(self.module_record):
            with open(self.module_record) as handle:
                recs = [json.loads(line) for line in handle if line.strip()]
            if recs:
                module_proc = max(recs, key=lambda r: r["wall_s"])
        result = {
            "tool": tool, "tables": tables, "db": self.db_name(tables), "warmup": warmup, "name": run_name,
            "rc": proc.returncode, "playbook_s": wall,
            "task_s": (task["end"] - task["task_start"]) if task and task.get("task_start") else None,
            "task_status": task["status"] if task else None,
            "self_reported_statements": (task or {}).get("result", {}).get("statements"),
            "self_reported_duration_s": (task or {}).get("result", {}).get("duration_s"),
            "msg": (task or {}).get("result", {}).get("msg"),
            "result_bytes": (task or {}).get("result_bytes"),
            "module_s": module_proc["wall_s"] if module_proc else None,
            "module_maxrss_mb": module_proc["maxrss_kb"] / 1024.0 if module_proc else None,
            "pgss_calls": pgss_calls, "pgss_entries": pgss_entries,
        }
        result.update(counted)
        ok = proc.returncode == 0 and result["task_status"] == "ok"
        result["ok"] = ok
        result["error"] = None if ok else (result["msg"] or failure_line(proc.stdout, proc.stderr))
        say("   %-26s rc=%d %-6s playbook %6.2f s  task %s  statements %4d  (pgss %d, conns %d)%s"
            % (run_name, proc.returncode, result["task_status"], wall,
               "%6.2f s" % result["task_s"] if result["task_s"] is not None else "   n/a",
               counted["statements"], pgss_calls, counted["connections"],
               "" if ok else "  FAILED: %s" % result["error"]))
        self.runs.append(result)
        return result

    def phase(self, tables, tools):
        say("== %d tables (database %s)" % (tables, self.db_name(tables)))
        failed = set()
        for tool in tools:  # one warm-up each, not counted
            if not self.run(tool, tables, warmup=True)["ok"]:
                failed.add(tool)
        for _rep in range(self.args.reps):  # interleaved, so drift hits both alike
            for tool in tools:
                if tool not in failed:
                    self.run(tool, tables)
        return failed

    # -- report ------------------------------------------------------------------
    def summarize(self, tables, tool):
        runs = [r for r in self.runs if r["tables"] == tables and r["tool"] == tool and not r["warmup"]]
        warm = [r for r in self.runs if r["tables"] == tables and r["tool"] == tool and r["warmup"]]
        if not runs:
            reason = self.availability.get(tool) or "failed: %s" % ((warm[0]["error"] if warm else None) or "see logs")
            return {"tool": tool, "tables": tables, "available": False, "reason": reason}

        def med(key):
            vals = [r[key] for r in runs if r[key] is not None]
            return statistics.median(vals) if vals else None

        stmts = [r["statements"] for r in runs]
        return {
            "tool": tool, "tables": tables, "available": True, "reps": len(runs),
            "statements": statistics.median(stmts), "statements_min": min(stmts), "statements_max": max(stmts),
            "tx_control": med("tx_control"), "connections": med("connections"), "pgss_calls": med("pgss_calls"),
            "self_reported": runs[-1]["self_reported_statements"], "databases": runs[-1]["databases"],
            "errors": runs[-1]["errors"],
            "playbook_s": med("playbook_s"), "task_s": med("task_s"), "module_s": med("module_s"),
            "module_maxrss_mb": med("module_maxrss_mb"), "result_bytes": med("result_bytes"),
            "sql_s": med("sql_s"), "first_words": runs[-1]["first_words"], "slowest": runs[-1]["slowest"],
        }

    def report(self, summaries, meta):
        lines = []
        add = lines.append
        add("")
        add("pgops.runbook.health_check vs community.postgresql.postgresql_info (median of %d runs each)"
            % self.args.reps)
        add("ansible %(ansible)s, ansible-core %(ansible-core)s, community.postgresql %(community.postgresql)s, "
            "psycopg2 %(psycopg2-binary)s, Python %(python)s" % meta["versions"])
        add("PostgreSQL %s, %d CPUs, load average %.2f at start, %.2f at end (other work on the machine"
            " skews times)" % (self.server_version, os.cpu_count(), meta["loadavg_start"][0], meta["loadavg_end"][0]))
        add("")
        head = ("%-16s %7s %10s %5s %5s %6s %6s %10s %8s %9s %7s %7s %7s"
                % ("tool", "tables", "statements", "txctl", "conns", "pgss", "self", "playbook_s", "task_s",
                   "module_s", "sql_s", "rss_MB", "out_KB"))
        add(head)
        add("-" * len(head))

        def num(v, fmt):
            return fmt % v if v is not None else "-"

        for s in summaries:
            if not s["available"]:
                add("%-16s %7d   %s" % (s["tool"], s["tables"], "not available: " + s["reason"]
                                        if s["tool"] == "health_check" and "not found" in s["reason"]
                                        else s["reason"]))
                continue
            st = "%d" % s["statements"] if s["statements_min"] == s["statements_max"] else \
                "%d-%d" % (s["statements_min"], s["statements_max"])
            add("%-16s %7d %10s %5s %5s %6s %6s %10s %8s %9s %7s %7s %7s" % (
                s["tool"], s["tables"], st, num(s["tx_control"], "%d"), num(s["connections"], "%d"),
                num(s["pgss_calls"], "%d"), num(s["self_reported"], "%s"), num(s["playbook_s"], "%.2f"),
                num(s["task_s"], "%.2f"), num(s["module_s"], "%.2f"), num(s["sql_s"], "%.2f"),
                num(s["module_maxrss_mb"], "%.0f"),
                num(s["result_bytes"] / 1024.0 if s["result_bytes"] is not None else None, "%.0f")))
        add("")
        by = dict(((s["tool"], s["tables"]), s) for s in summaries)
        ratios = {}
        for variant in ("health_check", "health_check_noseq"):
            add("ratios %s / postgresql_info:" % variant)
            for tables in (self.args.small, self.args.large):
                hc, pi = by.get((variant, tables)), by.get(("postgresql_info", tables))
                if not (hc and pi and hc["available"] and pi["available"]):
                    bad = [s for s in (hc, pi) if s and not s["available"]]
                    add("  %6d tables: n/a (%s)" % (tables, "; ".join("%s %s" % (s["tool"], s["reason"]) for s in bad)))
                    continue
                r = {}
                for key in ("statements", "playbook_s", "task_s", "module_s", "sql_s"):
                    r[key] = (hc[key] / pi[key]) if hc[key] is not None and pi[key] else None
                ratios["%s@%d" % (variant, tables)] = r
                add("  %6d tables: statements %s, playbook time %s, task time %s, module process time %s, "
                    "server SQL time %s" % (tables, num(r["statements"], "%.3f"), num(r["playbook_s"], "%.3f"),
                                            num(r["task_s"], "%.3f"), num(r["module_s"], "%.3f"),
                                            num(r["sql_s"], "%.3f")))
        for variant in ("health_check", "health_check_noseq"):
            hc_s, hc_l = by.get((variant, self.args.small)), by.get((variant, self.args.large))
            if hc_s and hc_l and hc_s["available"] and hc_l["available"]:
                add("%s statements %d tables -> %d tables: %s -> %s (%s)" % (
                    variant, self.args.small, self.args.large, hc_s["statements"], hc_l["statements"],
                    "constant" if hc_s["statements"] == hc_l["statements"] else "GROWS"))
        add("")
        add("columns: statements = server-logged query messages from the tool's role (min-max if runs differ);")
        add("  txctl = of which BEGIN/COMMIT/ROLLBACK; conns = sessions opened; pgss = pg_stat_statements calls;")
        add("  self = the module's own `statements` result; playbook_s = whole ansible-playbook run;")
        add("  task_s = task start to result (callback); module_s = the module's python process alone;")
        add("  sql_s = server-side time of its statements (logged durations; a failed statement: from its")
        add("  start to its error); rss_MB = the module process's peak RSS; out_KB = task result as JSON")
        for s in summaries:
            if s["available"] and s["errors"]:
                add("note: %s on %d tables: %d server-side error(s), first: %s"
                    % (s["tool"], s["tables"], len(s["errors"]), s["errors"][0]))
        for s in summaries:
            if s["available"] and s["tables"] == self.args.large and s["slowest"]:
                add("slowest statements of %s on %d tables (last run):" % (s["tool"], s["tables"]))
                for item in s["slowest"][:3]:
                    add("  %8.1f ms  %s" % (item["ms"], item["sql"][:110]))
        text = "\n".join(lines)
        print(text, flush=True)
        return text, ratios


def stage2(args):
    meta = {"versions": versions(), "cpus": os.cpu_count(), "reps": args.reps,
            "loadavg_start": os.getloadavg()}
    ensure_collection_link()
    bench = Bench(args)
    tools = [t for t in TOOLS if t in args.tools]
    if "health_check" in tools and not os.path.exists(HEALTH_CHECK_FILE):
        bench.availability["health_check"] = "not found (%s does not exist yet)" % os.path.relpath(
            HEALTH_CHECK_FILE, REPO)
        say("health_check: not available (%s does not exist yet); measuring postgresql_info only"
            % os.path.relpath(HEALTH_CHECK_FILE, REPO))
        tools.remove("health_check")
    say("== versions: %s" % ", ".join("%s %s" % kv for kv in meta["versions"].items()))
    say("== results in %s" % os.path.relpath(bench.out_dir, REPO))
    t_start = time.monotonic()
    try:
        say("== starting a throw-away server")
        bench.start_server()
        bench.prepare_ansible()
        meta["server_version"] = bench.server_version
        meta["populate"] = []
        for tables in (args.small, args.large):
            meta["populate"].append(bench.populate(tables))
            failed = bench.phase(tables, tools)
            for tool in failed:
                bench.availability.setdefault(tool, None)
    finally:
        for name in os.listdir(bench.work):
            if name.startswith("vars-"):
                os.unlink(os.path.join(bench.work, name))
        if bench.cluster is not None:
            bench.cluster.stop()
    meta["loadavg_end"] = os.getloadavg()
    summaries = [bench.summarize(tables, tool) for tables in (args.small, args.large) for tool in TOOLS
                 if tool in args.tools]
    text, ratios = bench.report(summaries, meta)
    meta["total_s"] = round(time.monotonic() - t_start, 1)
    with open(os.path.join(bench.out_dir, "summary.json"), "w") as handle:
        json.dump({"meta": meta, "summaries": summaries, "ratios": ratios, "runs": bench.runs}, handle,
                  indent=2, default=str)
    with open(os.path.join(bench.out_dir, "summary.txt"), "w") as handle:
        handle.write(text + "\n")
    say("total %.0f s; details in %s" % (meta["total_s"], os.path.relpath(bench.out_dir, REPO)))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=textwrap.dedent(__doc__.split("\n\n", 1)[1]))
    parser.add_argument("--reps", type=int, default=3, help="measured runs per tool and size (default 3)")
    parser.add_argument("--small", type=int, default=100, help="tables in the small database (default 100)")
    parser.add_argument("--large", type=int, default=10000, help="tables in the large database (default 10000)")
    parser.add_argument("--batch", type=int, default=200, help="tables created per transaction (default 200)")
    parser.add_argument("--tools", nargs="+", choices=TOOLS, default=list(TOOLS))
    parser.add_argument("--results-dir", help="default: benchmarks/results/<UTC time>")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter for creating benchmarks/.venv (default: this one)")
    args = parser.parse_args(argv)
    if args.small == args.large:
        parser.error("--small and --large must differ")
    if not in_bench_venv():
        if os.environ.get("BENCH_REEXEC"):
            raise SystemExit("re-executed in %s but sys.prefix is %s" % (VENV, sys.prefix))
        ensure_venv(args.python)
        os.environ["BENCH_REEXEC"] = "1"
        os.execv(VENV_PYTHON, [VENV_PYTHON, os.path.abspath(__file__)] + (sys.argv[1:] if argv is None else argv))
    return stage2(args)


if __name__ == "__main__":
    sys.exit(main())
