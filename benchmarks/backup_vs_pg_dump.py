"""pgops.runbook.backup against raw pg_dump: wall time, S3 streaming memory, compression methods.

On two pgbench databases of one throw-away PostgreSQL server (tests/harness/cluster.py),
a small one (pgbench scale 5 by default) and a large one (scale 50, ~750 MB of tables):

  1. time: raw `pg_dump -Fc -f FILE` (pg_dump's default compression, gzip level 6) over
     the Unix socket, and over TCP+SSL like the module, against the module
     (custom format, gzip level 6, dest: a local directory) with verify=list (the default:
     sha256, manifest, the whole stored dump read back through pg_restore) and with
     verify=none; --reps runs of each, alternating, medians reported. Goal: <= 1.10x.
  2. directory format: the module with jobs=2 against jobs=1 (gzip 6, verify list), raw
     `pg_dump -Fd -j N` beside it; printed as n/a when the module has no format directory.
  3. S3 streaming: the module with s3 only (no dest) into a moto S3 server on loopback, at
     both scales, with gzip 6 and, as pgbench's rows compress ~55:1, uncompressed too (so
     that both scales are multipart uploads); the peak memory of the module's process.
     Goal: <= 150 MB, not growing with the database.
  4. compression at the large scale: the module with gzip, zstd, lz4 (default levels) and
     none: stored size and time, and their ratios to gzip.

The module runs as the only task of a one-task playbook through the ansible-playbook of the
repository's virtualenv (.venv: ansible-core, psycopg2, boto3, moto); the collection is found
through <repo>/.build/collections. The module's interpreter is a small wrapper that records
the module process's wall time, CPU time and memory (see WRAPPER).

Usage (~4 minutes on 2 cores at the default scales; `make venv` first):
    python3 benchmarks/backup_vs_pg_dump.py [--reps 3] [--aux-reps 2] [--small-scale 5] [--large-scale 50]

Results (summary.txt, summary.json, each run's ansible output) go to
benchmarks/results/<UTC time>-backup/ (ignored by git). Not part of `make test`.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VENV = os.path.join(REPO, ".venv")
VENV_PYTHON = os.path.join(VENV, "bin", "python")
MODULE_FILE = os.path.join(REPO, "plugins", "modules", "backup.py")
PLAYBOOK_TIMEOUT = 1800
MIB = 1024.0 * 1024.0

# The time comparison: raw pg_dump twice (socket, TCP+SSL), the module twice (verify list, none).
TIME_VARIANTS = ("pg_dump_socket", "pg_dump_tcp_ssl", "module_verify_list", "module_verify_none")
# Directory format: the module with jobs 1 and 2, and raw pg_dump -Fd -j 1 / 2 beside it.
DIR_VARIANTS = ("pg_dump_dir_j1", "pg_dump_dir_j2", "module_dir_j1", "module_dir_j2")
COMPRESSIONS = ("gzip", "zstd", "lz4", "none")
# S3: gzip as the issue asks and, because pgbench's rows compress ~55:1 (the scale-50 dump is
# ~13 MB, less than one 16 MiB part), also uncompressed, which makes both scales multipart uploads.
S3_VARIANTS = (("module_s3_gzip", "gzip", 6), ("module_s3_none", "none", None))


def say(msg=""):
    print(msg, flush=True)


CALLBACK_PLUGIN = '''
# Written by benchmarks/backup_vs_pg_dump.py: records each task's start/end time and the
# result keys the benchmark reads, one JSON line per task result.
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

KEEP = ("size_bytes", "sha256", "duration_s", "verified", "verification", "locations", "stages", "msg", "failed",
        "changed", "backup_id")


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
#   * VmRSS of every process of its tree (pg_dump, gzip/zstd/lz4, pg_restore): the peak of
#     their sum is the memory the whole backup holds at once;
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

PLAYBOOK = """\
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


def directory_format_available():
    """Whether the module offers format: directory and jobs (the issue's second comparison)."""
    with open(MODULE_FILE) as handle:
        text = handle.read()
    spec = re.search(r"\bformat=dict\((.*)", text)
    return bool(spec and '"directory"' in spec.group(1) and re.search(r"\bjobs=dict\(", text))


def tree_size(path):
    """Bytes of a file, or of every file under a directory."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, dummy_dirs, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


class Bench:
    def __init__(self, args):
        self.args = args
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.out_dir = os.path.abspath(args.results_dir or os.path.join(HERE, "results", stamp + "-backup"))
        self.work = os.path.join(self.out_dir, "work")
        self.dumps = os.path.join(self.work, "dumps")
        for sub in ("callback_plugins", "home", "tmp", "dumps"):
            os.makedirs(os.path.join(self.work, sub), exist_ok=True)
        self.cluster = None
        self.moto = None
        self.s3 = None
        self.runs = []
        self.run_no = 0
        self.databases = {}

    # -- server and databases -----------------------------------------------------
    def start_server(self):
        sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
        from cluster import Cluster, pg_bindir  # pylint: disable=import-error
        self.bindir = pg_bindir()
        self.cluster = Cluster()
        self.cluster.start_primary()
        self.info = self.cluster.describe()
        self.server_version = self.cluster.primary.execute("SHOW server_version")[0][0]
        self.pg_dump_version = subprocess.run([os.path.join(self.bindir, "pg_dump"), "--version"], check=True,
                                              capture_output=True, text=True).stdout.strip()
        # Raw pg_dump and pgbench connect as postgres over the socket (local trust) or, like the
        # module, over TCP with SSL and the password; no PG* variable of the caller leaks in.
        self.pg_env = dict((k, v) for k, v in os.environ.items() if not k.startswith("PG"))

    def db_name(self, scale):
        return "pgbench_s%d" % scale

    def socket_args(self):
        return ["-h", self.info["socket_dir"], "-p", str(self.info["port"]), "-U", "postgres"]

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
        # What the module adds while pg_dump runs: an exact count(*) of every table in the dump's
        # snapshot. Timed here alone, once, to show its cost.
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
    def start_s3(self):
        sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
        from s3 import MotoServer, client_for  # pylint: disable=import-error
        self.moto = MotoServer().start()
        facts = self.moto.facts()
        self.s3 = dict(bucket="pgops-bench", endpoint_url=facts["endpoint_url"], region=facts["region"],
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

    def s3_parts(self, locations):
        """How many parts the stored dump was uploaded in (1: a single put_object)."""
        for uri in locations or []:
            if uri.startswith("s3://"):
                bucket, dummy, key = uri[5:].partition("/")
                try:
                    head = self.s3_client.head_object(Bucket=bucket, Key=key, PartNumber=1)
                except Exception:  # pylint: disable=broad-except
                    return None
                return head.get("PartsCount", 1)
        return None

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
    def prepare_ansible(self):
        import ansible
        self.ansible_core = ansible.__version__ if hasattr(ansible, "__version__") else None
        try:
            from ansible.release import __version__ as core_version
            self.ansible_core = core_version
        except ImportError:
            pass
        sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
        from collection import ensure_collection_path  # pylint: disable=import-error
        self.collections = ensure_collection_path()
        try:
            from ansible_collections.pgops.runbook.plugins.module_utils.storage import s3 as s3_storage
            self.part_size = s3_storage.DEFAULT_PART_SIZE
        except ImportError:
            self.part_size = None
        with open(os.path.join(self.work, "callback_plugins", "bench_timing.py"), "w") as handle:
            handle.write(CALLBACK_PLUGIN)
        self.module_record = os.path.join(self.work, "module_process.jsonl")
        self.wrapper = os.path.join(self.work, "python-wrapper")
        with open(self.wrapper, "w") as handle:
            handle.write(WRAPPER % {"python": VENV_PYTHON, "record": self.module_record})
        os.chmod(self.wrapper, 0o755)
        with open(os.path.join(self.work, "inventory.ini"), "w") as handle:
            handle.write("localhost ansible_connection=local ansible_python_interpreter=%s\n" % self.wrapper)
        with open(os.path.join(self.work, "ansible.cfg"), "w") as handle:
            handle.write("[defaults]\nretry_files_enabled = false\n")
        with open(os.path.join(self.work, "backup.yml"), "w") as handle:
            handle.write(PLAYBOOK)
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
        path = os.path.join(self.work, "vars-%s.json" % name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(values, handle)
        return path

    # -- one run --------------------------------------------------------------------------
    def next_name(self, label):
        self.run_no += 1
        return "%03d-%s" % (self.run_no, label)

    def run_pg_dump(self, scale, over, section, warmup=False, jobs=None):
        """Raw pg_dump -Fc -f FILE, default compression, over the socket or TCP+SSL;
        with `jobs`, pg_dump -Fd -j JOBS -f DIR over the socket."""
        variant = "pg_dump_dir_j%d" % jobs if jobs else "pg_dump_" + over
        name = self.next_name("%s-s%d%s" % (variant, scale, "-warmup" if warmup else ""))
        target = os.path.join(self.dumps, name + ".dump")
        env = dict(self.pg_env)
        if over == "socket":
            conn_args = self.socket_args()
        else:
            conn_args = ["-h", self.info["host"], "-p", str(self.info["port"]), "-U", "postgres"]
            env.update(PGPASSWORD=self.info["superuser_password"], PGSSLMODE="require")
        fmt = ["-Fd", "-j", str(jobs)] if jobs else ["-Fc"]
        argv = [os.path.join(self.bindir, "pg_dump")] + fmt + ["-f", target] + conn_args + [self.db_name(scale)]
        err_file = os.path.join(self.work, name + ".stderr")
        with open(err_file, "w+") as err_handle:
            t0 = time.monotonic()
            proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=err_handle)
            # wait4 rather than wait: the rusage gives pg_dump's CPU time and peak RSS.
            dummy_pid, status, usage = os.wait4(proc.pid, 0)
            wall = time.monotonic() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            err_handle.seek(0)
            err = err_handle.read()
        os.unlink(err_file)
        size = tree_size(target) if os.path.exists(target) else None
        if os.path.isdir(target):
            shutil.rmtree(target)
        elif os.path.exists(target):
            os.unlink(target)
        rec = {"name": name, "section": section, "variant": variant, "scale": scale, "warmup": warmup,
               "loadavg_1m": os.getloadavg()[0],
               "ok": proc.returncode == 0, "error": err.strip()[-300:] or None, "playbook_s": None, "task_s": wall,
               "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_mb": usage.ru_maxrss / 1024.0,
               "size_bytes": size}
        say("   %-34s %s wall %7.2f s  cpu %6.2f s  size %8.1f MB%s"
            % (name, "ok    " if rec["ok"] else "FAILED", wall, rec["cpu_s"], (size or 0) / MIB,
               "" if rec["ok"] else "  " + (rec["error"] or "")))
        self.runs.append(rec)
        return rec

    def run_module(self, scale, variant, section, compression="gzip", level=None, verify="list", to_s3=False,
                   warmup=False, jobs=None):
        name = self.next_name("%s-s%d%s" % (variant, scale, "-warmup" if warmup else ""))
        dest = os.path.join(self.dumps, name)
        values = {"bench_host": self.info["host"], "bench_port": self.info["port"],
                  "bench_password": self.info["superuser_password"], "bench_db": self.db_name(scale),
                  "bench_compression": compression, "bench_verify": verify}
        if level is not None:
            values["bench_level"] = level
        if jobs is not None:
            values.update(bench_format="directory", bench_jobs=jobs)
        if to_s3:
            values["bench_s3"] = self.s3
        else:
            os.makedirs(dest)
            values["bench_dest"] = dest
        timing_file = os.path.join(self.work, name + ".timing.jsonl")
        env = dict(self.env, BENCH_TIMING_FILE=timing_file)
        if os.path.exists(self.module_record):
            os.unlink(self.module_record)
        argv = [os.path.join(VENV, "bin", "ansible-playbook"), "-i", os.path.join(self.work, "inventory.ini"),
                os.path.join(self.work, "backup.yml"), "-e", "@" + self.vars_file(name, values)]
        moto_before = self.moto_rss_mb() if to_s3 else None
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
        manifest = res.get("manifest") or {}
        started, finished = parse_time(manifest.get("started_at")), parse_time(manifest.get("finished_at"))
        dump_s = finished - started if started and finished else None
        ok = proc.returncode == 0 and task is not None and task["status"] == "ok"
        rec = {
            "name": name, "section": section, "variant": variant, "scale": scale, "warmup": warmup,
            "loadavg_1m": os.getloadavg()[0], "compression": compression, "level": level, "verify": verify, "s3": to_s3,
            "ok": ok, "error": None if ok else (res.get("msg") or failure_line(proc.stdout, proc.stderr)),
            "playbook_s": wall,
            "task_s": (task["end"] - task["task_start"]) if task and task.get("task_start") else None,
            "module_s": module_proc["wall_s"] if module_proc else None,
            "cpu_s": module_proc["cpu_s"] if module_proc else None,
            "hwm_mb": module_proc["hwm_kb"] / 1024.0 if module_proc else None,
            "maxrss_mb": module_proc["maxrss_kb"] / 1024.0 if module_proc else None,
            "tree_peak_mb": module_proc["tree_peak_kb"] / 1024.0 if module_proc else None,
            "duration_s": res.get("duration_s"), "dump_s": dump_s,
            "rest_s": res["duration_s"] - dump_s if dump_s is not None and res.get("duration_s") is not None else None,
            "size_bytes": res.get("size_bytes"), "verification": res.get("verification"),
            "stages": res.get("stages"), "locations": res.get("locations"),
            "snapshot_rows": manifest.get("snapshot_rows"), "compression_recorded": manifest.get("compression"),
            "moto_rss_before_mb": moto_before, "moto_rss_after_mb": self.moto_rss_mb() if to_s3 else None,
        }
        if not to_s3:
            shutil.rmtree(dest, ignore_errors=True)
        else:
            rec["s3_parts"] = self.s3_parts(rec["locations"])
            self.s3_empty()
        say("   %-34s %s playbook %7.2f s  task %7.2f s  dump %6.2f s  rest %5.2f s  py %4.0f MB  tree %4.0f MB"
            "  size %8.1f MB%s"
            % (name, "ok    " if ok else "FAILED", wall, rec["task_s"] or 0, rec["dump_s"] or 0, rec["rest_s"] or 0,
               rec["hwm_mb"] or 0, rec["tree_peak_mb"] or 0, (rec["size_bytes"] or 0) / MIB,
               "" if ok else "  " + str(rec["error"])))
        if ok and verify == "list" and (rec["verification"] or {}).get("status") != "passed":
            say("      verification: %s" % rec["verification"])
        self.runs.append(rec)
        return rec

    def time_variant(self, scale, variant, section, warmup=False):
        if variant == "pg_dump_socket":
            return self.run_pg_dump(scale, "socket", section, warmup)
        if variant == "pg_dump_tcp_ssl":
            return self.run_pg_dump(scale, "tcp_ssl", section, warmup)
        verify = "list" if variant == "module_verify_list" else "none"
        return self.run_module(scale, variant, section, compression="gzip", level=6, verify=verify, warmup=warmup)

    # -- the sections ---------------------------------------------------------------------
    def section_time(self, scale, warmup):
        say("== time: raw pg_dump -Fc vs the module (gzip 6), pgbench scale %d, %d reps alternating%s (load %.2f)"
            % (scale, self.args.reps, ", after one warm-up run of each" if warmup else "", os.getloadavg()[0]))
        if warmup:
            for variant in TIME_VARIANTS:
                self.time_variant(scale, variant, "time", warmup=True)
        for rep in range(self.args.reps):
            # Alternate, and rotate the order each rep, so drift in machine load hits all alike.
            order = TIME_VARIANTS[rep % len(TIME_VARIANTS):] + TIME_VARIANTS[:rep % len(TIME_VARIANTS)]
            for variant in order:
                self.time_variant(scale, variant, "time")

    def dir_variant(self, scale, variant, warmup=False):
        jobs = int(variant[-1])
        if variant.startswith("pg_dump_"):
            return self.run_pg_dump(scale, "socket", "directory", warmup, jobs=jobs)
        return self.run_module(scale, variant, "directory", compression="gzip", level=6, verify="list", jobs=jobs,
                               warmup=warmup)

    def section_directory(self, scale):
        say("== directory format, jobs 1 vs 2 (module: gzip 6, verify list, dest; raw pg_dump -Fd -j N over the"
            " socket), pgbench scale %d, %d reps alternating, after one warm-up run of each (load %.2f)"
            % (scale, self.args.reps, os.getloadavg()[0]))
        for variant in DIR_VARIANTS:
            self.dir_variant(scale, variant, warmup=True)
        for rep in range(self.args.reps):
            order = DIR_VARIANTS[rep % len(DIR_VARIANTS):] + DIR_VARIANTS[:rep % len(DIR_VARIANTS)]
            for variant in order:
                self.dir_variant(scale, variant)

    def section_s3(self, scale):
        say("== S3 streaming (moto on loopback, s3 only, verify list; gzip 6 and none), pgbench scale %d, %d run(s)"
            % (scale, self.args.aux_reps))
        for dummy_rep in range(self.args.aux_reps):
            for variant, method, level in S3_VARIANTS:
                self.run_module(scale, variant, "s3", compression=method, level=level, verify="list", to_s3=True)

    def section_compression(self, scale):
        say("== compression methods (module, dest, default levels, verify list), pgbench scale %d, %d run(s)"
            % (scale, self.args.aux_reps))
        for dummy_rep in range(self.args.aux_reps):
            for method in COMPRESSIONS:
                self.run_module(scale, "module_" + method, "compression", compression=method, verify="list")

    # -- report -----------------------------------------------------------------------------
    def measured(self, section, variant, scale):
        return [r for r in self.runs if r["section"] == section and r["variant"] == variant and r["scale"] == scale
                and not r["warmup"]]

    def summary(self, section, variant, scale):
        runs = self.measured(section, variant, scale)
        good = [r for r in runs if r["ok"]]
        out = {"section": section, "variant": variant, "scale": scale, "runs": len(runs), "ok": len(good),
               "error": next((r["error"] for r in runs if not r["ok"]), None)}
        for key in ("playbook_s", "task_s", "module_s", "cpu_s", "duration_s", "dump_s", "rest_s", "size_bytes",
                    "hwm_mb", "maxrss_mb", "tree_peak_mb", "moto_rss_after_mb"):
            out[key] = median([r.get(key) for r in good])
        for key in ("hwm_mb", "tree_peak_mb", "maxrss_mb"):
            vals = [r.get(key) for r in good if r.get(key) is not None]
            out[key + "_max"] = max(vals) if vals else None
        statuses = sorted(set((r.get("verification") or {}).get("status") for r in good if "verification" in r))
        out["verification"] = ",".join(str(s) for s in statuses) if statuses else None
        return out

    def report_directory(self, add, scales, ratios):
        add("2. directory format, jobs=2 vs jobs=1 (module: gzip 6, verify list, dest; raw pg_dump -Fd -j N over"
            " the socket)")
        head = "%-15s %5s %10s %8s %8s %8s %8s %8s %9s %s" % (
            "variant", "scale", "playbook_s", "task_s", "dump_s", "rest_s", "cpu_s", "tree_MB", "size_MB",
            "verification")
        add(head)
        add("-" * len(head))
        dsum = {}
        for scale in scales:
            for variant in DIR_VARIANTS:
                s = self.summary("directory", variant, scale)
                dsum[(variant, scale)] = s
                if not s["ok"]:
                    add("%-15s %5d   %s" % (variant, scale, "not run" if not s["runs"] else "failed: %s" % s["error"]))
                    continue
                add("%-15s %5d %10s %8s %8s %8s %8s %8s %9s %s" % (
                    variant, scale, num(s["playbook_s"], "%.2f"), num(s["task_s"], "%.2f"), num(s["dump_s"], "%.2f"),
                    num(s["rest_s"], "%.2f"), num(s["cpu_s"], "%.2f"), num(s["tree_peak_mb"], "%.0f"),
                    num(s["size_bytes"] / MIB if s["size_bytes"] else None, "%.1f"), s.get("verification") or ""))
        for scale in scales:
            m1, m2 = dsum[("module_dir_j1", scale)], dsum[("module_dir_j2", scale)]
            r1, r2 = dsum[("pg_dump_dir_j1", scale)], dsum[("pg_dump_dir_j2", scale)]
            r = {"module_task_j2_vs_j1": ratio(m2["task_s"], m1["task_s"]),
                 "module_dump_j2_vs_j1": ratio(m2["dump_s"], m1["dump_s"]),
                 "pg_dump_j2_vs_j1": ratio(r2["task_s"], r1["task_s"]),
                 "module_j1_task_vs_pg_dump_j1": ratio(m1["task_s"], r1["task_s"]),
                 "module_j2_task_vs_pg_dump_j2": ratio(m2["task_s"], r2["task_s"])}
            ratios["directory@%d" % scale] = r
            add("  scale %3d jobs 2 / jobs 1: module task %s, module dump phase %s, raw pg_dump %s;"
                " module / raw pg_dump: task %s (j1), %s (j2)"
                % (scale, num(r["module_task_j2_vs_j1"], "%.2fx"), num(r["module_dump_j2_vs_j1"], "%.2fx"),
                   num(r["pg_dump_j2_vs_j1"], "%.2fx"), num(r["module_j1_task_vs_pg_dump_j1"], "%.2fx"),
                   num(r["module_j2_task_vs_pg_dump_j2"], "%.2fx")))
        large = self.databases.get(self.args.large_scale)
        if large and large["tables"] and large["bytes"]:
            biggest = large["tables"][0]
            add("  pg_dump runs one job per table: %s holds %.1f%% of the scale-%d database's table bytes, so a second"
                % (biggest["name"], 100.0 * biggest["bytes"] / sum(t["bytes"] for t in large["tables"]),
                   self.args.large_scale))
            add("  job has next to nothing to do on pgbench data (it would on a database of many similar tables).")
        return dsum

    def report(self, meta):
        lines = []
        add = lines.append
        scales = [self.args.small_scale, self.args.large_scale]
        add("")
        add("pgops.runbook.backup vs pg_dump -Fc (medians; %d reps in the time comparison, %d elsewhere)"
            % (self.args.reps, self.args.aux_reps))
        add("%s; server PostgreSQL %s; ansible-core %s; Python %s; moto %s; boto3 %s"
            % (self.pg_dump_version, self.server_version, self.ansible_core, platform.python_version(),
               meta["versions"].get("moto"), meta["versions"].get("boto3")))
        loads = [r["loadavg_1m"] for r in self.runs]
        add("%d CPUs; load average %.2f at start, %.2f at end, %.2f-%.2f at the start of the runs (other work on the"
            " machine skews times)" % (os.cpu_count(), meta["loadavg_start"][0], meta["loadavg_end"][0],
                                       min(loads) if loads else 0, max(loads) if loads else 0))
        for scale in scales:
            d = self.databases.get(scale)
            if d:
                add("database %s (pgbench -s %d): %s; count(*) of every table, alone: %.2f s"
                    % (d["db"], scale, d["pretty"], d["count_all_s"]))
        add("")
        add("1. wall time: raw pg_dump -Fc -f FILE (default compression = gzip 6) vs the module (custom, gzip 6, dest)")
        head = ("%-20s %5s %10s %8s %8s %8s %8s %8s %7s %7s %9s %s"
                % ("variant", "scale", "playbook_s", "task_s", "module_s", "dump_s", "rest_s", "cpu_s", "py_MB",
                   "tree_MB", "size_MB", "verification"))
        add(head)
        add("-" * len(head))
        sums = {}
        for scale in scales:
            for variant in TIME_VARIANTS:
                s = self.summary("time", variant, scale)
                sums[(variant, scale)] = s
                if not s["ok"]:
                    add("%-20s %5d   %s" % (variant, scale, "not run" if not s["runs"] else "failed: %s" % s["error"]))
                    continue
                add("%-20s %5d %10s %8s %8s %8s %8s %8s %7s %7s %9s %s" % (
                    variant, scale, num(s["playbook_s"], "%.2f"), num(s["task_s"], "%.2f"), num(s["module_s"], "%.2f"),
                    num(s["dump_s"], "%.2f"), num(s["rest_s"], "%.2f"), num(s["cpu_s"], "%.2f"),
                    num(s["hwm_mb"], "%.0f"), num(s["tree_peak_mb"], "%.0f"),
                    num(s["size_bytes"] / MIB if s["size_bytes"] else None, "%.1f"), s.get("verification") or ""))
        add("  (for pg_dump rows task_s = module_s = the pg_dump process's wall time; cpu_s = its CPU time)")
        add("")
        ratios = {}
        add("ratios, module / raw pg_dump (goal <= 1.10):")
        for scale in scales:
            raw_sock, raw_tcp = sums[("pg_dump_socket", scale)], sums[("pg_dump_tcp_ssl", scale)]
            for variant in ("module_verify_list", "module_verify_none"):
                m = sums[(variant, scale)]
                r = {"task_vs_socket": ratio(m["task_s"], raw_sock["task_s"]),
                     "playbook_vs_socket": ratio(m["playbook_s"], raw_sock["task_s"]),
                     "task_vs_tcp_ssl": ratio(m["task_s"], raw_tcp["task_s"]),
                     "dump_vs_socket": ratio(m["dump_s"], raw_sock["task_s"]),
                     "dump_vs_tcp_ssl": ratio(m["dump_s"], raw_tcp["task_s"])}
                ratios["%s@%d" % (variant, scale)] = r
                add("  scale %3d %-19s vs pg_dump over the socket: task %s, playbook %s, dump phase %s;"
                    " vs pg_dump over TCP+SSL: task %s, dump phase %s%s"
                    % (scale, variant, num(r["task_vs_socket"], "%.2fx"), num(r["playbook_vs_socket"], "%.2fx"),
                       num(r["dump_vs_socket"], "%.2fx"), num(r["task_vs_tcp_ssl"], "%.2fx"),
                       num(r["dump_vs_tcp_ssl"], "%.2fx"),
                       "" if r["task_vs_socket"] is None else
                       ("  -> task goal met" if r["task_vs_socket"] <= 1.10 else "  -> task goal NOT met")))
            lst, non = sums[("module_verify_list", scale)], sums[("module_verify_none", scale)]
            if lst["task_s"] is not None and non["task_s"] is not None:
                add("  scale %3d verification (verify=list minus verify=none): %.2f s of task time, %.2f s of"
                    " module CPU" % (scale, lst["task_s"] - non["task_s"], (lst["cpu_s"] or 0) - (non["cpu_s"] or 0)))
            for variant in ("module_verify_list", "module_verify_none"):
                m = sums[(variant, scale)]
                if None in (m["playbook_s"], m["task_s"], m["module_s"], m["duration_s"], m["dump_s"], m["rest_s"]):
                    continue
                add("  scale %3d %-19s playbook %.2f s ~ ansible-playbook start/exit %.2f + Ansible's task handling"
                    " %.2f + module process start/exit %.2f + before/after the dump %.2f + dump phase %.2f"
                    % (scale, variant, m["playbook_s"], m["playbook_s"] - m["task_s"], m["task_s"] - m["module_s"],
                       m["module_s"] - m["duration_s"], m["rest_s"], m["dump_s"]))
        add("  dump_s = the module's dump phase (manifest started_at -> finished_at: pg_dump, the sha256,")
        add("  the writes, and the exact count(*) of every table read in the same snapshot at the same time);")
        add("  rest_s = the module's duration_s minus dump_s (connect, client-tool checks, lock; then verification:")
        add("  the whole stored dump read back, sha256, pg_restore to SQL and scanned; then the manifest);")
        add("  module_s - duration_s = the module process's Python start-up, imports and exit; task_s - module_s = Ansible's")
        add("  own work for the task; playbook_s - task_s = ansible-playbook's start-up and exit (medians of each part,")
        add("  so the parts need not add up exactly).")
        add("")
        if not meta["directory_available"]:
            add("2. directory format, jobs=2 vs jobs=1: n/a: directory format not implemented yet")
            dsum = {}
        else:
            dsum = self.report_directory(add, scales, ratios)
        add("")
        add("3. S3 streaming (s3 only, no dest; verify list reads the object back from S3); goal <= 150 MB, not growing"
            " with the database")
        head3 = "%-15s %5s %10s %8s %8s %9s %6s %11s %13s %10s %12s" % (
            "variant", "scale", "playbook_s", "task_s", "dump_s", "size_MB", "parts", "py_peak_MB", "tree_peak_MB",
            "maxrss_MB", "moto_RSS_MB")
        add(head3)
        add("-" * len(head3))
        s3sums = {}
        for variant, dummy_method, dummy_level in S3_VARIANTS:
            for scale in scales:
                s = self.summary("s3", variant, scale)
                s3sums[(variant, scale)] = s
                if not s["ok"]:
                    add("%-15s %5d   %s" % (variant, scale, "not run" if not s["runs"] else "failed: %s" % s["error"]))
                    continue
                parts = sorted(set(r.get("s3_parts") for r in self.measured("s3", variant, scale) if r["ok"]),
                               key=str)
                add("%-15s %5d %10s %8s %8s %9s %6s %11s %13s %10s %12s" % (
                    variant, scale, num(s["playbook_s"], "%.2f"), num(s["task_s"], "%.2f"), num(s["dump_s"], "%.2f"),
                    num(s["size_bytes"] / MIB if s["size_bytes"] else None, "%.1f"),
                    "/".join(str(p) for p in parts), num(s["hwm_mb_max"], "%.0f"), num(s["tree_peak_mb_max"], "%.0f"),
                    num(s["maxrss_mb_max"], "%.0f"), num(s["moto_rss_after_mb"], "%.0f")))
        for variant, dummy_method, dummy_level in S3_VARIANTS:
            small, large = s3sums.get((variant, self.args.small_scale)), s3sums.get((variant, self.args.large_scale))
            if small and large and small["ok"] and large["ok"]:
                growth = large["hwm_mb_max"] - small["hwm_mb_max"]
                # "Not growing": less than 10 MB apart (run-to-run noise of a Python process is a few MB).
                verdict = "goal met" if large["hwm_mb_max"] <= 150 and growth < 10 else "goal NOT met"
                add("  %s: module process peak %.0f MB at scale %d, %.0f MB at scale %d (%+.0f MB for a %.0fx larger"
                    " dump) -> %s" % (variant, small["hwm_mb_max"], self.args.small_scale, large["hwm_mb_max"],
                                      self.args.large_scale, growth,
                                      large["size_bytes"] / float(small["size_bytes"] or 1), verdict))
                ratios["%s_py_peak_mb" % variant] = {"small": small["hwm_mb_max"], "large": large["hwm_mb_max"]}
        add("  the module buffers at most one part (%s): a dump smaller than that is one put_object at commit,"
            % ("%d MiB" % (self.part_size / MIB) if self.part_size else "its part size"))
        add("  held whole until then; a larger one a multipart upload (parts = parts of the stored object).")
        add("  py_peak = the module's Python process alone (VmHWM); tree_peak = sampled peak of the RSS summed over it")
        add("  and its children (pg_dump, pg_restore); maxrss = wait4's largest single process; moto_RSS = the S3")
        add("  server after the run (it keeps objects in memory; they are deleted between runs).")
        add("")
        add("4. compression methods at scale %d (module, dest, default levels, verify list)" % self.args.large_scale)
        head4 = "%-8s %6s %10s %8s %8s %8s %8s %10s %11s %10s %11s" % (
            "method", "level", "size_MB", "task_s", "dump_s", "rest_s", "cpu_s", "size/gzip", "task/gzip",
            "dump/gzip", "db/size")
        add(head4)
        add("-" * len(head4))
        comp = dict((m, self.summary("compression", "module_" + m, self.args.large_scale)) for m in COMPRESSIONS)
        gz = comp["gzip"]
        levels = {"gzip": 6, "zstd": 3, "lz4": 1, "none": None}
        db_bytes = (self.databases.get(self.args.large_scale) or {}).get("bytes")
        for method in COMPRESSIONS:
            s = comp[method]
            if not s["ok"]:
                add("%-8s   %s" % (method, "not run" if not s["runs"] else "failed: %s" % s["error"]))
                continue
            add("%-8s %6s %10s %8s %8s %8s %8s %10s %11s %10s %11s" % (
                method, num(levels[method], "%d"), num(s["size_bytes"] / MIB if s["size_bytes"] else None, "%.1f"),
                num(s["task_s"], "%.2f"), num(s["dump_s"], "%.2f"), num(s["rest_s"], "%.2f"), num(s["cpu_s"], "%.2f"),
                num(ratio(s["size_bytes"], gz["size_bytes"]), "%.3f"), num(ratio(s["task_s"], gz["task_s"]), "%.3f"),
                num(ratio(s["dump_s"], gz["dump_s"]), "%.3f"), num(ratio(db_bytes, s["size_bytes"]), "%.1f")))
            ratios["compression_%s" % method] = {"size_vs_gzip": ratio(s["size_bytes"], gz["size_bytes"]),
                                                 "task_vs_gzip": ratio(s["task_s"], gz["task_s"])}
        add("  gzip is done inside pg_dump (its custom format's own compression); zstd and lz4 compress the")
        add("  uncompressed archive in the stream (a separate process: on 2 cores it runs beside pg_dump).")
        add("  db/size = database size on disk / stored size.")
        failed = [r for r in self.runs if not r["ok"]]
        if failed:
            add("")
            add("%d run(s) failed (not in the medians):" % len(failed))
            for r in failed:
                add("  %s: %s" % (r["name"], r["error"] or "exit status only (killed?)"))
        text = "\n".join(lines)
        print(text, flush=True)
        return text, ratios, {"time": [sums[k] for k in sorted(sums, key=lambda k: (k[1], k[0]))],
                              "directory": [dsum[k] for k in sorted(dsum, key=lambda k: (k[1], k[0]))],
                              "s3": [s3sums[k] for k in sorted(s3sums)], "compression": list(comp.values())}


def versions():
    out = {"python": platform.python_version()}
    from importlib.metadata import version, PackageNotFoundError
    for dist in ("ansible-core", "psycopg2", "psycopg2-binary", "boto3", "moto"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def stage2(args):
    meta = {"versions": versions(), "cpus": os.cpu_count(), "args": vars(args), "loadavg_start": os.getloadavg(),
            "directory_available": directory_format_available()}
    bench = Bench(args)
    say("== results in %s" % os.path.relpath(bench.out_dir, REPO))
    t_start = time.monotonic()
    try:
        say("== starting a throw-away server")
        bench.start_server()
        bench.prepare_ansible()
        say("== %s; ansible-core %s" % (bench.pg_dump_version, bench.ansible_core))
        say("== creating the pgbench databases")
        for scale in (args.small_scale, args.large_scale):
            bench.create_pgbench(scale)
        if not args.skip_time:
            for scale in (args.small_scale, args.large_scale):
                bench.section_time(scale, warmup=True)
        if not args.skip_directory:
            if meta["directory_available"]:
                for scale in (args.small_scale, args.large_scale):
                    bench.section_directory(scale)
            else:
                say("== directory format: n/a: directory format not implemented yet")
        if not args.skip_s3:
            say("== starting moto (S3 on loopback)")
            bench.start_s3()
            for scale in (args.small_scale, args.large_scale):
                bench.section_s3(scale)
        if not args.skip_compression:
            bench.section_compression(args.large_scale)
    finally:
        for name in os.listdir(bench.work):
            if name.startswith("vars-"):
                os.unlink(os.path.join(bench.work, name))
        if bench.moto is not None:
            bench.moto.stop()
        if bench.cluster is not None:
            bench.cluster.stop()
        shutil.rmtree(bench.dumps, ignore_errors=True)
    meta["loadavg_end"] = os.getloadavg()
    meta["total_s"] = round(time.monotonic() - t_start, 1)
    text, ratios, summaries = bench.report(meta)
    with open(os.path.join(bench.out_dir, "summary.json"), "w") as handle:
        json.dump({"meta": meta, "databases": bench.databases, "summaries": summaries, "ratios": ratios,
                   "runs": bench.runs}, handle, indent=2, default=str)
    with open(os.path.join(bench.out_dir, "summary.txt"), "w") as handle:
        handle.write(text + "\n")
    say("total %.0f s; details in %s" % (meta["total_s"], os.path.relpath(bench.out_dir, REPO)))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=textwrap.dedent(__doc__.split("\n\n", 1)[1]))
    parser.add_argument("--reps", type=int, default=3, help="measured runs of each variant in the time comparison (3)")
    parser.add_argument("--aux-reps", type=int, default=2,
                        help="runs of each S3 and compression measurement (default 2)")
    parser.add_argument("--small-scale", type=int, default=5, help="pgbench scale of the small database (default 5)")
    parser.add_argument("--large-scale", type=int, default=50, help="pgbench scale of the large database (default 50)")
    parser.add_argument("--skip-time", action="store_true", help="leave out the time comparison")
    parser.add_argument("--skip-directory", action="store_true", help="leave out the directory format comparison")
    parser.add_argument("--skip-s3", action="store_true", help="leave out the S3 memory measurement")
    parser.add_argument("--skip-compression", action="store_true", help="leave out the compression comparison")
    parser.add_argument("--results-dir", help="default: benchmarks/results/<UTC time>-backup")
    args = parser.parse_args(argv)
    if args.small_scale == args.large_scale:
        parser.error("--small-scale and --large-scale must differ")
    if os.path.realpath(sys.prefix) != os.path.realpath(VENV):
        if os.environ.get("BENCH_REEXEC"):
            raise SystemExit("re-executed in %s but sys.prefix is %s" % (VENV, sys.prefix))
        if not os.path.exists(VENV_PYTHON):
            raise SystemExit("%s not found: run `make venv` first" % VENV_PYTHON)
        os.environ["BENCH_REEXEC"] = "1"
        os.execv(VENV_PYTHON, [VENV_PYTHON, os.path.abspath(__file__)] + (sys.argv[1:] if argv is None else argv))
    return stage2(args)


if __name__ == "__main__":
    sys.exit(main())
