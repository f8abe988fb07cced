"""What the module benchmarks share (backup_vs_pg_dump.py, restore_vs_pg_restore.py).

  * re-running the script with the repository's virtualenv (.venv, `make venv`): `reexec_in_venv`;
  * a throw-away PostgreSQL server (tests/harness/cluster.py) and pgbench databases in it;
  * a moto S3 server on loopback (tests/harness/s3.py) with one bucket;
  * running a module as the only task of a one-task playbook through .venv's ansible-playbook,
    with a callback plugin that records the task's time and the result keys the benchmark
    reads (CALLBACK_PLUGIN) and a wrapper interpreter that records the module process's wall
    time, CPU time and memory (WRAPPER): `BenchBase.prepare_ansible`, `BenchBase.run_playbook`;
  * medians and formatting: `median`, `num`, `ratio`, `summarize`.

Not a test helper and not part of the collection: imported by the scripts beside it.
"""

import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
HARNESS = os.path.join(REPO, "tests", "harness")
VENV = os.path.join(REPO, ".venv")
VENV_PYTHON = os.path.join(VENV, "bin", "python")
PLAYBOOK_TIMEOUT = 1800
MIB = 1024.0 * 1024.0


def say(msg=""):
    print(msg, flush=True)


def reexec_in_venv(script, argv=None):
    """Re-run `script` with .venv's Python unless this already is it (returns only then)."""
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    if os.environ.get("BENCH_REEXEC"):
        raise SystemExit("re-executed in %s but sys.prefix is %s" % (VENV, sys.prefix))
    if not os.path.exists(VENV_PYTHON):
        raise SystemExit("%s not found: run `make venv` first" % VENV_PYTHON)
    os.environ["BENCH_REEXEC"] = "1"
    os.execv(VENV_PYTHON, [VENV_PYTHON, os.path.abspath(script)] + (sys.argv[1:] if argv is None else list(argv)))


# The result keys the callback keeps when the benchmark names none.
DEFAULT_KEEP = ("msg", "failed", "changed", "duration_s")

CALLBACK_PLUGIN = '''
# Written by benchmarks/common.py: records each task's start/end time and the
# result keys the benchmark reads, one JSON line per task result.
from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: bench_timing
type: aggregate
short_description: task timings for the pgops benchmarks
description: Appends one JSON line per task result to the file in BENCH_TIMING_FILE.
"""

KEEP = %(keep)r


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timing"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._path = os.environ["BENCH_TIMING_FILE"]
        self._task_start = {}

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task_start[task._uuid] = time.time()

    def _record(self, result, status):
        end = time.time()
        task = result._task
        res = result._result
        keep = dict((k, res[k]) for k in KEEP if k in res)
        if "manifest" in res:
            # A backup's manifest: its times and the snapshot's row counts, not the whole snapshot.
            manifest = res.get("manifest") or {}
            keep["manifest"] = dict((k, manifest.get(k)) for k in ("started_at", "finished_at", "compression", "file"))
            keep["manifest"]["snapshot_rows"] = dict((t, v.get("rows")) for t, v in
                                                     ((manifest.get("snapshot") or {}).get("tables") or {}).items())
        rec = dict(task=task.get_name(), action=task.action, status=status,
                   task_start=self._task_start.get(task._uuid), end=end, result=keep)
        with open(self._path, "a") as handle:
            handle.write(json.dumps(rec, default=str) + "\\n")

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")
'''

# The module's interpreter, as seen by Ansible: runs the venv's python as a child (the module
# process: AnsiballZ runs the module inside it) and, every 50 ms until it exits, reads
#   * VmHWM of that python process: its own peak resident memory (the kernel's high-water
#     mark; only growth in the last < 50 ms before exit can be missed);
#   * VmRSS of every process of its tree (pg_dump, pg_restore, gzip/zstd/lz4, gpg): the peak of
#     their sum is the memory the whole run holds at once;
# and, at exit, wait4's rusage: CPU time of the process and the children it waited for, and
# ru_maxrss, the largest peak among them (the python process or any one of its children).
WRAPPER = '''#!%(python)s -SE
import json, os, sys, time
t0 = time.monotonic()
pid = os.fork()
if pid == 0:
    os.execv(%(python)r, [%(python)r] + sys.argv[1:])


def status_kb(p, field):
    try:
        with open("/proc/%%d/status" %% p) as handle:
            for line in handle:
                if line.startswith(field):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree(p):
    found = [p]
    try:
        tasks = os.listdir("/proc/%%d/task" %% p)
    except OSError:
        return found
    for tid in tasks:
        try:
            with open("/proc/%%d/task/%%s/children" %% (p, tid)) as handle:
                kids = [int(x) for x in handle.read().split()]
        except (OSError, ValueError):
            continue
        for kid in kids:
            found.extend(tree(kid))
    return found


hwm = 0
tree_peak = 0
samples = 0
while True:
    done, status, usage = os.wait4(pid, os.WNOHANG)
    if done:
        break
    hwm = max(hwm, status_kb(pid, "VmHWM:"))
    tree_peak = max(tree_peak, sum(status_kb(p, "VmRSS:") for p in tree(pid)))
    samples += 1
    time.sleep(0.05)
t1 = time.monotonic()
with open(%(record)r, "a") as handle:
    handle.write(json.dumps({"wall_s": t1 - t0, "maxrss_kb": usage.ru_maxrss, "hwm_kb": hwm, "tree_peak_kb": tree_peak,
                             "cpu_s": usage.ru_utime + usage.ru_stime, "samples": samples,
                             "args": sys.argv[1:]}) + "\\n")
sys.exit(os.waitstatus_to_exitcode(status))
'''

# pgops.runbook.backup as a one-task playbook: custom format unless bench_format says otherwise;
# dest and/or s3 as given. Connects like a user would from another host: TCP, SSL, a password.
BACKUP_PLAYBOOK = """\
- name: Benchmark pgops.runbook.backup
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Run pgops.runbook.backup
      pgops.runbook.backup:
        login_host: "{{ bench_host }}"
        login_port: "{{ bench_port }}"
        login_user: postgres
        login_password: "{{ bench_password }}"
        login_db: "{{ bench_db }}"
        ssl_mode: require
        dest: "{{ bench_dest | default(omit) }}"
        s3: "{{ bench_s3 | default(omit) }}"
        format: "{{ bench_format | default('custom') }}"
        jobs: "{{ bench_jobs | default(omit) }}"
        compression: "{{ bench_compression }}"
        compression_level: "{{ bench_level | default(omit) }}"
        verify: "{{ bench_verify }}"
"""


def failure_line(stdout, stderr):
    """The first line of ansible-playbook's output that says what went wrong."""
    for text in (stderr, stdout):
        for line in text.splitlines():
            if "ERROR" in line or "FAILED" in line or "fatal:" in line:
                return line.strip()[:300]
    return (stderr.strip() or stdout.strip() or "no output")[-300:]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def num(value, fmt):
    return fmt % value if value is not None else "-"


def ratio(a, b):
    return a / b if a is not None and b else None


def parse_time(text):
    return datetime.datetime.fromisoformat(text).timestamp() if text else None


def tree_size(path):
    """Bytes of a file, or of every file under a directory."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, dummy_dirs, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def versions():
    out = {"python": platform.python_version()}
    from importlib.metadata import version, PackageNotFoundError
    for dist in ("ansible-core", "psycopg2", "psycopg2-binary", "boto3", "moto"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def rotated(variants, rep):
    """`variants` rotated by `rep`: alternating runs whose order changes each rep, so that
    drift in machine load hits all variants alike."""
    k = rep % len(variants)
    return tuple(variants[k:]) + tuple(variants[:k])


def summarize(runs, keys, max_keys=()):
    """Medians of `keys` over the successful runs (and the largest value of `max_keys`, as <key>_max)."""
    good = [r for r in runs if r["ok"]]
    out = {"runs": len(runs), "ok": len(good), "error": next((r["error"] for r in runs if not r["ok"]), None)}
    for key in keys:
        out[key] = median([r.get(key) for r in good])
    for key in max_keys:
        vals = [r.get(key) for r in good if r.get(key) is not None]
        out[key + "_max"] = max(vals) if vals else None
    return out


def wait_timed(argv, env, err_name):
    """Run argv to its end with wait4: (exit code, wall s, CPU s of it and its waited-for children,
    their largest peak RSS in MB, the tail of its stderr)."""
    with open(err_name, "w+") as err_handle:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err_handle)
        # wait4 rather than wait: the rusage gives the process's CPU time and peak RSS.
        dummy_pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err_handle.seek(0)
        err = err_handle.read()
    os.unlink(err_name)
    return proc.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, err.strip()[-300:] or None


class BenchBase:
    """A run directory benchmarks/results/<UTC time>-<kind>/ (its work/ subdirectory holds the
    callback plugin, the wrapper, the playbooks, HOME and temp of Ansible), the server, moto,
    and the runs recorded so far (self.runs)."""

    def __init__(self, args, kind, subdirs=()):
        self.args = args
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.out_dir = os.path.abspath(getattr(args, "results_dir", None)
                                       or os.path.join(HERE, "results", stamp + "-" + kind))
        self.work = os.path.join(self.out_dir, "work")
        for sub in ("callback_plugins", "home", "tmp") + tuple(subdirs):
            os.makedirs(os.path.join(self.work, sub), exist_ok=True)
        self.cluster = None
        self.moto = None
        self.s3 = None
        self.runs = []
        self.run_no = 0
        self.databases = {}

    # -- server and databases -----------------------------------------------------
    def start_server(self):
        if HARNESS not in sys.path:
            sys.path.insert(0, HARNESS)
        from cluster import Cluster, pg_bindir  # pylint: disable=import-error
        self.bindir = pg_bindir()
        self.cluster = Cluster()
        self.cluster.start_primary()
        self.info = self.cluster.describe()
        self.server_version = self.cluster.primary.execute("SHOW server_version")[0][0]
        self.pg_dump_version = self.tool_version("pg_dump")
        # Raw client tools and pgbench connect as postgres over the socket (local trust) or, like
        # the module, over TCP with SSL and the password; no PG* variable of the caller leaks in.
        self.pg_env = dict((k, v) for k, v in os.environ.items() if not k.startswith("PG"))

    def tool_version(self, tool):
        return subprocess.run([os.path.join(self.bindir, tool), "--version"], check=True,
                              capture_output=True, text=True).stdout.strip()

    def db_name(self, scale):
        return "pgbench_s%d" % scale

    def socket_args(self):
        return ["-h", self.info["socket_dir"], "-p", str(self.info["port"]), "-U", "postgres"]

    def client_args(self, over):
        """(connection arguments, environment) for a raw client tool as postgres over the Unix socket
        ("socket") or over TCP with SSL required and the password in the environment ("tcp_ssl")."""
        env = dict(self.pg_env)
        if over == "socket":
            return self.socket_args(), env
        env.update(PGPASSWORD=self.info["superuser_password"], PGSSLMODE="require")
        return ["-h", self.info["host"], "-p", str(self.info["port"]), "-U", "postgres"], env

    def create_pgbench(self, scale):
        db = self.db_name(scale)
        p = self.cluster.primary
        p.execute("CREATE DATABASE %s" % db)
        t0 = time.monotonic()
        # Server-side data generation (G): the same rows as the default, without the COPY round trip.
        subprocess.run([os.path.join(self.bindir, "pgbench"), "-i", "-q", "-I", "dtGvp", "-s", str(scale)]
                       + self.socket_args() + [db], env=self.pg_env, check=True, capture_output=True, text=True)
        p.execute("CHECKPOINT")
        elapsed = time.monotonic() - t0
        rows = p.execute("SELECT pg_database_size(%s), pg_size_pretty(pg_database_size(%s))", (db, db))[0]
        tables = p.execute("SELECT c.relname, pg_total_relation_size(c.oid), c.reltuples::bigint FROM pg_class c "
                           "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                           "AND c.relkind = 'r' ORDER BY 2 DESC", dbname=db)
        # What the modules do on the server besides the client tool: an exact count(*) of every
        # table (the backup's manifest, the restore's validation). Timed here alone, once.
        conn = p.connect(db)
        try:
            with conn.cursor() as cur:
                t1 = time.monotonic()
                for name, dummy_size, dummy_tuples in tables:
                    cur.execute("SELECT count(*) FROM public.%s" % name)
                    cur.fetchone()
                count_s = time.monotonic() - t1
        finally:
            conn.close()
        self.databases[scale] = {"db": db, "scale": scale, "bytes": rows[0], "pretty": rows[1],
                                 "init_s": round(elapsed, 1), "count_all_s": round(count_s, 3),
                                 "tables": [{"name": t[0], "bytes": t[1], "rows": t[2]} for t in tables]}
        say("   %s: pgbench -i -s %d in %.1f s; database size %s (%d bytes); count(*) of every table alone %.2f s"
            % (db, scale, elapsed, rows[1], rows[0], count_s))
        for name, size, tuples in tables:
            say("      %-20s %10.1f MB %12d rows" % (name, size / MIB, tuples))

    # -- S3 ---------------------------------------------------------------------------
    def start_s3(self, bucket="pgops-bench"):
        if HARNESS not in sys.path:
            sys.path.insert(0, HARNESS)
        from s3 import MotoServer, client_for  # pylint: disable=import-error
        self.moto = MotoServer().start()
        facts = self.moto.facts()
        self.s3 = dict(bucket=bucket, endpoint_url=facts["endpoint_url"], region=facts["region"],
                       access_key=facts["access_key"], secret_key=facts["secret_key"])
        self.s3_client = client_for(facts)
        self.s3_client.create_bucket(Bucket=self.s3["bucket"])

    def s3_empty(self):
        """Delete every object (and unfinished upload) in the bucket: moto keeps them in memory."""
        client, bucket = self.s3_client, self.s3["bucket"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
        for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])

    def moto_rss_mb(self):
        try:
            with open("/proc/%d/status" % self.moto.process.pid) as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024.0
        except (OSError, ValueError):
            pass
        return None

    # -- ansible ------------------------------------------------------------------------
    def prepare_ansible(self, playbooks, keep=DEFAULT_KEEP):
        """Write the callback plugin (keeping the result keys `keep`), the wrapper interpreter, the
        inventory, ansible.cfg and `playbooks` ({file name: text}) into the work directory."""
        import ansible
        self.ansible_core = ansible.__version__ if hasattr(ansible, "__version__") else None
        try:
            from ansible.release import __version__ as core_version
            self.ansible_core = core_version
        except ImportError:
            pass
        if HARNESS not in sys.path:
            sys.path.insert(0, HARNESS)
        from collection import ensure_collection_path  # pylint: disable=import-error
        self.collections = ensure_collection_path()
        with open(os.path.join(self.work, "callback_plugins", "bench_timing.py"), "w") as handle:
            handle.write(CALLBACK_PLUGIN % {"keep": tuple(keep)})
        self.module_record = os.path.join(self.work, "module_process.jsonl")
        self.wrapper = os.path.join(self.work, "python-wrapper")
        with open(self.wrapper, "w") as handle:
            handle.write(WRAPPER % {"python": VENV_PYTHON, "record": self.module_record})
        os.chmod(self.wrapper, 0o755)
        with open(os.path.join(self.work, "inventory.ini"), "w") as handle:
            handle.write("localhost ansible_connection=local ansible_python_interpreter=%s\n" % self.wrapper)
        with open(os.path.join(self.work, "ansible.cfg"), "w") as handle:
            handle.write("[defaults]\nretry_files_enabled = false\n")
        for file_name, text in playbooks.items():
            with open(os.path.join(self.work, file_name), "w") as handle:
                handle.write(text)
        self.env = dict((k, v) for k, v in os.environ.items() if not k.startswith(("PG", "ANSIBLE_", "AWS_")))
        self.env.update({
            "PATH": os.path.join(VENV, "bin") + os.pathsep + os.environ.get("PATH", ""),
            "HOME": os.path.join(self.work, "home"),
            "ANSIBLE_CONFIG": os.path.join(self.work, "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": self.collections,
            "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
            "ANSIBLE_CALLBACK_PLUGINS": os.path.join(self.work, "callback_plugins"),
            "ANSIBLE_CALLBACKS_ENABLED": "bench_timing",
            "ANSIBLE_LOCAL_TEMP": os.path.join(self.work, "tmp"),
            "ANSIBLE_REMOTE_TEMP": os.path.join(self.work, "tmp"),
            "ANSIBLE_NOCOLOR": "1",
        })

    def vars_file(self, name, values):
        """The playbook's variables (the server's password among them) in a file only we can read;
        run_playbook deletes it after the run."""
        path = os.path.join(self.work, "vars-%s.json" % name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(values, handle)
        return path

    def connection_values(self):
        """The playbooks' connection variables: the module connects as postgres over TCP with SSL."""
        return {"bench_host": self.info["host"], "bench_port": self.info["port"],
                "bench_password": self.info["superuser_password"]}

    def next_name(self, label):
        self.run_no += 1
        return "%03d-%s" % (self.run_no, label)

    def run_playbook(self, name, playbook, values):
        """Run the one-task `playbook` (a file name in the work directory) with `values` as extra
        variables; keep its output in <out_dir>/<name>.ansible.txt. Returns a dict: ok, error, res
        (the kept result keys), playbook_s (the whole ansible-playbook process), task_s (task start
        to result, from the callback), and from the wrapper module_s, cpu_s, hwm_mb, maxrss_mb,
        tree_peak_mb (None when the module process did not run)."""
        timing_file = os.path.join(self.work, name + ".timing.jsonl")
        env = dict(self.env, BENCH_TIMING_FILE=timing_file)
        if os.path.exists(self.module_record):
            os.unlink(self.module_record)
        argv = [os.path.join(VENV, "bin", "ansible-playbook"), "-i", os.path.join(self.work, "inventory.ini"),
                os.path.join(self.work, playbook), "-e", "@" + self.vars_file(name, values)]
        t0 = time.monotonic()
        proc = subprocess.run(argv, env=env, cwd=self.work, capture_output=True, text=True, timeout=PLAYBOOK_TIMEOUT,
                              check=False)
        wall = time.monotonic() - t0
        os.unlink(os.path.join(self.work, "vars-%s.json" % name))
        with open(os.path.join(self.out_dir, name + ".ansible.txt"), "w") as handle:
            handle.write("$ %s\nrc=%d\n--- stdout\n%s\n--- stderr\n%s"
                         % (" ".join(argv), proc.returncode, proc.stdout, proc.stderr))
        task = None
        if os.path.exists(timing_file):
            with open(timing_file) as handle:
                recs = [json.loads(line) for line in handle if line.strip()]
            task = recs[-1] if recs else None
        module_proc = None
        if os.path.exists(self.module_record):
            with open(self.module_record) as handle:
                recs = [json.loads(line) for line in handle if line.strip()]
            if recs:
                module_proc = max(recs, key=lambda r: r["wall_s"])
        res = (task or {}).get("result", {})
        ok = proc.returncode == 0 and task is not None and task["status"] == "ok"
        return {
            "ok": ok, "error": None if ok else (res.get("msg") or failure_line(proc.stdout, proc.stderr)),
            "res": res, "playbook_s": wall,
            "task_s": (task["end"] - task["task_start"]) if task and task.get("task_start") else None,
            "module_s": module_proc["wall_s"] if module_proc else None,
            "cpu_s": module_proc["cpu_s"] if module_proc else None,
            "hwm_mb": module_proc["hwm_kb"] / 1024.0 if module_proc else None,
            "maxrss_mb": module_proc["maxrss_kb"] / 1024.0 if module_proc else None,
            "tree_peak_mb": module_proc["tree_peak_kb"] / 1024.0 if module_proc else None,
        }

    def measured(self, section, variant, scale):
        return [r for r in self.runs if r["section"] == section and r["variant"] == variant and r["scale"] == scale
                and not r["warmup"]]

    def load_range(self):
        loads = [r["loadavg_1m"] for r in self.runs]
        return (min(loads) if loads else 0, max(loads) if loads else 0)

    def cleanup(self, *dirs):
        """Delete the vars files left by an interrupted run, stop moto and the server, remove `dirs`."""
        if os.path.isdir(self.work):
            for name in os.listdir(self.work):
                if name.startswith("vars-"):
                    os.unlink(os.path.join(self.work, name))
        if self.moto is not None:
            self.moto.stop()
        if self.cluster is not None:
            self.cluster.stop()
        for path in dirs:
            shutil.rmtree(path, ignore_errors=True)

    def write_results(self, text, data):
        with open(os.path.join(self.out_dir, "summary.json"), "w") as handle:
            json.dump(data, handle, indent=2, default=str)
        with open(os.path.join(self.out_dir, "summary.txt"), "w") as handle:
            handle.write(text + "\n")


# The migrate module as the migrate benchmarks run it: one task, the SQL tool, the result keys they read.
MIGRATE_KEEP = ("msg", "failed", "changed", "applied", "retries", "current", "final", "conflicts")

MIGRATE_PLAYBOOK = """\
- name: Benchmark pgops.runbook.migrate
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Run pgops.runbook.migrate
      pgops.runbook.migrate:
        login_host: "{{ bench_host }}"
        login_port: "{{ bench_port }}"
        login_user: postgres
        login_password: "{{ bench_password }}"
        login_db: "{{ bench_db }}"
        ssl_mode: require
        project_dir: "{{ bench_project }}"
        tool: sql
        lock_timeout: "{{ bench_lock_timeout | default('5s') }}"
        lock_retries: "{{ bench_lock_retries | default(5) }}"
"""
