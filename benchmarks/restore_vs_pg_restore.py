"""pgops.runbook.restore against raw pg_restore: wall time, the phases, restoring from S3.

On a pgbench database (scale 50 by default, ~750 MB of tables) of one throw-away PostgreSQL
server (tests/harness/cluster.py), ONE backup is taken with pgops.runbook.backup (custom format,
gzip level 6 inside pg_dump, dest: a local directory, verify none), then:

  1. time: raw `pg_restore -j 2 --exit-on-error -d <fresh db> FILE` (the database created just
     before, not timed) over TCP+SSL as the module connects, and over the Unix socket as a second
     reference, against the module restoring the same file (src: the dump's path, jobs 2,
     mode new) with validate=false and analyze=false (the apples-to-apples restore) and with
     its defaults (validate=true, analyze=true), reported separately with the module's
     timings (check_s, restore_s, validate_s, analyze_s, swap_s). One warm-up run of each,
     then --reps runs, alternating, medians. Goal: <= 1.10x, validation timed separately.
     Ratios for the task time and for the module's restore phase alone (timings.restore_s),
     so that the fixed cost (Ansible, the module's start, the check pass) shows apart.
  2. S3: a second backup of the same database into a moto S3 server on loopback (s3 only),
     restored by the module with jobs=1 (path streamed: the check pass reads the whole object,
     the restore reads it again through a pipe into pg_restore) and jobs=2 (path spooled: the
     check pass writes a local copy into work_dir, which pg_restore -j 2 reads), validate and
     analyze off; beside them the local dump with jobs=1 (path direct). Time, the check pass
     (check_s) and the module process's peak memory.

Every restored database is dropped after its run (then CHECKPOINT), outside the timing.

The module runs as the only task of a one-task playbook through the ansible-playbook of the
repository's virtualenv (.venv), with the interpreter wrapper and timing callback of
benchmarks/common.py (shared with backup_vs_pg_dump.py).

Usage (`make venv` first; at the default scale a few minutes on 2 cores, see benchmarks/README.md):
    python3 benchmarks/restore_vs_pg_restore.py [--scale 50] [--reps 3] [--aux-reps 2]

Results (summary.txt, summary.json, each run's ansible output) go to
benchmarks/results/<UTC time>-restore/ (ignored by git). Not part of `make test`.
"""

import argparse
import os
import platform
import sys
import textwrap
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (BACKUP_PLAYBOOK, MIB, REPO, BenchBase, num, ratio, reexec_in_venv, rotated,  # noqa: E402
                    say, summarize, versions, wait_timed)

JOBS = 2
# The time comparison: raw pg_restore -j 2 twice (TCP+SSL like the module, the socket), the
# module with jobs 2 twice (validate/analyze off: the same work as pg_restore; on: the defaults).
TIME_VARIANTS = ("pg_restore_tcp_ssl", "pg_restore_socket", "module_restore", "module_restore_full")
# S3: the S3 backup with jobs 1 (streamed) and 2 (spooled); the local one with jobs 1 (direct) beside them.
S3_VARIANTS = ("module_local_j1", "module_s3_j1", "module_s3_j2")
EXPECTED_PATH = {"module_restore": "direct", "module_restore_full": "direct", "module_local_j1": "direct",
                 "module_s3_j1": "streamed", "module_s3_j2": "spooled"}
PHASES = ("check_s", "restore_s", "validate_s", "analyze_s", "swap_s")

# The result keys the callback keeps, of the backup and of the restore module.
KEEP = ("msg", "failed", "changed", "duration_s", "backup_id", "path", "s3_uri", "locations", "size_bytes", "sha256",
        "verification", "timings", "restoring_db", "target_db", "source", "archive_entries", "validation",
        "discarded_restoring")

RESTORE_PLAYBOOK = """\
- name: Benchmark pgops.runbook.restore
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Run pgops.runbook.restore
      pgops.runbook.restore:
        login_host: "{{ bench_host }}"
        login_port: "{{ bench_port }}"
        login_user: postgres
        login_password: "{{ bench_password }}"
        ssl_mode: require
        src: "{{ bench_src }}"
        s3: "{{ bench_s3 | default(omit) }}"
        target_db: "{{ bench_target }}"
        jobs: "{{ bench_jobs }}"
        validate: "{{ bench_validate }}"
        analyze: "{{ bench_analyze }}"
        work_dir: "{{ bench_work_dir }}"
"""


class Bench(BenchBase):
    def __init__(self, args):
        super().__init__(args, "restore", subdirs=("backups", "spool"))
        self.backups = os.path.join(self.work, "backups")
        self.spool = os.path.join(self.work, "spool")
        self.backup = {}

    def prepare_ansible(self):
        super().prepare_ansible({"backup.yml": BACKUP_PLAYBOOK, "restore.yml": RESTORE_PLAYBOOK}, keep=KEEP)

    # -- the backups --------------------------------------------------------------------
    def take_backup(self, where):
        """The one backup each part restores: custom, gzip 6 in pg_dump, verify none; into the local
        directory (where="local") or into the bucket only (where="s3")."""
        scale = self.args.scale
        name = self.next_name("backup-%s-s%d" % (where, scale))
        values = dict(self.connection_values(), bench_db=self.db_name(scale), bench_compression="gzip", bench_level=6,
                      bench_verify="none")
        if where == "s3":
            values["bench_s3"] = self.s3
        else:
            values["bench_dest"] = self.backups
        run = self.run_playbook(name, "backup.yml", values)
        res = run["res"]
        src = res.get("s3_uri") if where == "s3" else res.get("path")
        if not run["ok"] or not src:
            raise SystemExit("the %s backup failed: %s" % (where, run["error"] or "no %s in its result"
                                                           % ("s3_uri" if where == "s3" else "path")))
        info = {"name": name, "src": src, "backup_id": res.get("backup_id"), "size_bytes": res.get("size_bytes"),
                "task_s": run["task_s"], "duration_s": res.get("duration_s")}
        if where == "s3":
            bucket, dummy, key = src[5:].partition("/")
            try:
                head = self.s3_client.head_object(Bucket=bucket, Key=key, PartNumber=1)
                info["parts"] = head.get("PartsCount", 1)
            except Exception:  # pylint: disable=broad-except
                info["parts"] = None
        self.backup[where] = info
        say("   %-34s ok     task %7.2f s  %s  %.1f MB%s"
            % (name, run["task_s"] or 0, src if where == "s3" else os.path.relpath(src, REPO),
               (info["size_bytes"] or 0) / MIB, "  %s part(s)" % info.get("parts") if where == "s3" else ""))
        return info

    # -- between runs -------------------------------------------------------------------
    def drop_restored(self, target):
        """Drop the restored database (and a half-restored one a failed run left), then CHECKPOINT,
        so that every run starts from the same state. Not timed."""
        p = self.cluster.primary
        rows = p.execute("SELECT datname FROM pg_database WHERE datname = %s OR datname LIKE %s",
                         (target, target + "\\_\\_restoring\\_%"))
        for (name,) in rows or []:
            p.execute('DROP DATABASE "%s" WITH (FORCE)' % name)
        p.execute("CHECKPOINT")

    def restored_tables(self, target):
        rows = self.cluster.primary.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r'", dbname=target)
        return rows[0][0]

    # -- one run --------------------------------------------------------------------------
    def run_pg_restore(self, variant, section, warmup=False):
        """Raw pg_restore -j 2 --exit-on-error -d DB FILE into a database created just before (not timed)."""
        over = variant[len("pg_restore_"):]
        scale = self.args.scale
        name = self.next_name("%s-s%d%s" % (variant, scale, "-warmup" if warmup else ""))
        target = "raw_%s" % name[:3]
        self.cluster.primary.execute('CREATE DATABASE "%s" TEMPLATE template0' % target)
        conn_args, env = self.client_args(over)
        argv = ([os.path.join(self.bindir, "pg_restore"), "-j", str(JOBS), "--exit-on-error", "-d", target]
                + conn_args + [self.backup["local"]["src"]])
        returncode, wall, cpu_s, maxrss_mb, err = wait_timed(argv, env, os.path.join(self.work, name + ".stderr"))
        tables = self.restored_tables(target) if returncode == 0 else None
        expected = len(self.databases[scale]["tables"])
        ok = returncode == 0 and tables == expected
        if returncode == 0 and not ok:
            err = "restored %s tables, expected %d" % (tables, expected)
        self.drop_restored(target)
        rec = {"name": name, "section": section, "variant": variant, "scale": scale, "warmup": warmup,
               "loadavg_1m": os.getloadavg()[0], "jobs": JOBS, "over": over,
               "ok": ok, "error": err if not ok else None, "playbook_s": None, "task_s": wall, "restore_s": wall,
               "wall_s": wall, "cpu_s": cpu_s, "maxrss_mb": maxrss_mb}
        say("   %-34s %s wall %7.2f s  cpu %6.2f s%s"
            % (name, "ok    " if ok else "FAILED", wall, cpu_s, "" if ok else "  " + (rec["error"] or "")))
        self.runs.append(rec)
        return rec

    def run_module(self, variant, section, jobs, full=False, from_s3=False, warmup=False):
        """The module restoring the local (or the S3) backup into a new database, jobs `jobs`;
        validate and analyze as `full` says."""
        scale = self.args.scale
        name = self.next_name("%s-s%d%s" % (variant, scale, "-warmup" if warmup else ""))
        target = "restored_%s" % name[:3]
        values = dict(self.connection_values(), bench_src=self.backup["s3" if from_s3 else "local"]["src"],
                      bench_target=target, bench_jobs=jobs, bench_validate=full, bench_analyze=full,
                      bench_work_dir=self.spool)
        if from_s3:
            values["bench_s3"] = self.s3
        moto_before = self.moto_rss_mb() if from_s3 else None
        run = self.run_playbook(name, "restore.yml", values)
        res, ok = run["res"], run["ok"]
        timings = res.get("timings") or {}
        rec = {"name": name, "section": section, "variant": variant, "scale": scale, "warmup": warmup,
               "loadavg_1m": os.getloadavg()[0], "jobs": jobs, "validate": full, "analyze": full, "s3": from_s3,
               "ok": ok, "error": run["error"]}
        rec.update((k, run[k]) for k in ("playbook_s", "task_s", "module_s", "cpu_s", "hwm_mb", "maxrss_mb",
                                         "tree_peak_mb"))
        rec.update((k, timings.get(k)) for k in PHASES)
        duration = res.get("duration_s")
        rec.update({
            "duration_s": duration,
            # Connecting, the version checks, the lock, creating the database: the module's time outside its phases.
            "other_s": duration - sum(v for v in timings.values() if v is not None) if duration is not None else None,
            "path": res.get("path"), "archive_entries": res.get("archive_entries"),
            "validation": (res.get("validation") or {}).get("status"),
            "validation_differences": (res.get("validation") or {}).get("differences"),
            "restoring_db": res.get("restoring_db"),
            "moto_rss_before_mb": moto_before, "moto_rss_after_mb": self.moto_rss_mb() if from_s3 else None,
        })
        if ok and rec["path"] != EXPECTED_PATH[variant]:
            say("      path %s, expected %s" % (rec["path"], EXPECTED_PATH[variant]))
        if ok and full and rec["validation"] != "passed":
            say("      validation: %s %s" % (rec["validation"], rec["validation_differences"]))
        self.drop_restored(target)
        leftovers = os.listdir(self.spool)
        if leftovers:
            say("      left in work_dir: %s" % leftovers)
        say("   %-34s %s playbook %7.2f s  task %7.2f s  check %5.2f s  restore %6.2f s  validate %5.2f s"
            "  analyze %5.2f s  py %4.0f MB  tree %4.0f MB  %s%s"
            % (name, "ok    " if ok else "FAILED", rec["playbook_s"], rec["task_s"] or 0, rec["check_s"] or 0,
               rec["restore_s"] or 0, rec["validate_s"] or 0, rec["analyze_s"] or 0, rec["hwm_mb"] or 0,
               rec["tree_peak_mb"] or 0, rec["path"] or "", "" if ok else "  " + str(rec["error"])))
        self.runs.append(rec)
        return rec

    def time_variant(self, variant, warmup=False):
        if variant.startswith("pg_restore_"):
            return self.run_pg_restore(variant, "time", warmup)
        return self.run_module(variant, "time", JOBS, full=variant == "module_restore_full", warmup=warmup)

    def s3_variant(self, variant):
        jobs = int(variant[-1])
        return self.run_module(variant, "s3", jobs, from_s3=variant.startswith("module_s3_"))

    # -- the sections ---------------------------------------------------------------------
    def section_time(self):
        say("== time: raw pg_restore -j %d vs the module (jobs %d), pgbench scale %d, %d reps alternating, after one"
            " warm-up run of each (load %.2f)" % (JOBS, JOBS, self.args.scale, self.args.reps, os.getloadavg()[0]))
        for variant in TIME_VARIANTS:
            self.time_variant(variant, warmup=True)
        for rep in range(self.args.reps):
            for variant in rotated(TIME_VARIANTS, rep):
                self.time_variant(variant)

    def section_s3(self):
        say("== S3 (moto on loopback): the module with jobs 1 (streamed) and 2 (spooled), the local dump with jobs 1"
            " (direct) beside them; validate and analyze off; pgbench scale %d, %d run(s) alternating (load %.2f)"
            % (self.args.scale, self.args.aux_reps, os.getloadavg()[0]))
        for rep in range(self.args.aux_reps):
            for variant in rotated(S3_VARIANTS, rep):
                self.s3_variant(variant)

    # -- report -----------------------------------------------------------------------------
    def summary(self, section, variant):
        runs = self.measured(section, variant, self.args.scale)
        out = {"section": section, "variant": variant, "scale": self.args.scale}
        out.update(summarize(runs, ("playbook_s", "task_s", "module_s", "cpu_s", "duration_s", "other_s", "hwm_mb",
                                    "maxrss_mb", "tree_peak_mb", "moto_rss_after_mb") + PHASES,
                             max_keys=("hwm_mb", "tree_peak_mb", "maxrss_mb")))
        good = [r for r in runs if r["ok"]]
        for key in ("path", "validation"):
            values = sorted(set(str(r.get(key)) for r in good if r.get(key) is not None))
            out[key] = ",".join(values) if values else None
        return out

    def report(self, meta):
        lines = []
        add = lines.append
        scale = self.args.scale
        add("")
        add("pgops.runbook.restore vs pg_restore -j %d (medians; %d reps in the time comparison, %d in the S3 part)"
            % (JOBS, self.args.reps, self.args.aux_reps))
        add("%s; server PostgreSQL %s; ansible-core %s; Python %s; moto %s; boto3 %s"
            % (self.pg_restore_version, self.server_version, self.ansible_core, platform.python_version(),
               meta["versions"].get("moto"), meta["versions"].get("boto3")))
        low, high = self.load_range()
        add("%d CPUs; load average %.2f at start, %.2f at end, %.2f-%.2f after the runs (other work on the machine"
            " skews times)" % (os.cpu_count(), meta["loadavg_start"][0], meta["loadavg_end"][0], low, high))
        d = self.databases.get(scale)
        if d:
            add("database %s (pgbench -s %d): %s; count(*) of every table, alone: %.2f s"
                % (d["db"], scale, d["pretty"], d["count_all_s"]))
        for where, what in (("local", "local dump"), ("s3", "S3 object")):
            b = self.backup.get(where)
            if b:
                add("%s: %s, custom format, gzip 6, %.1f MB%s (backup %s, verify none)"
                    % (what, b["src"] if where == "s3" else os.path.relpath(b["src"], REPO), (b["size_bytes"] or 0) / MIB,
                       ", %s part(s)" % b.get("parts") if where == "s3" else "", b["backup_id"]))
        add("")
        add("1. wall time: raw pg_restore -j %d --exit-on-error -d <new db> FILE vs the module (src: the same file,"
            " jobs %d, mode new)" % (JOBS, JOBS))
        head = ("%-20s %10s %8s %8s %10s %8s %9s %10s %9s %7s %7s %7s %6s %7s %-8s %s"
                % ("variant", "playbook_s", "task_s", "module_s", "duration_s", "check_s", "restore_s", "validate_s",
                   "analyze_s", "swap_s", "other_s", "cpu_s", "py_MB", "tree_MB", "path", "validation"))
        add(head)
        add("-" * len(head))
        sums = {}
        for variant in TIME_VARIANTS:
            s = self.summary("time", variant)
            sums[variant] = s
            if not s["ok"]:
                add("%-20s   %s" % (variant, "not run" if not s["runs"] else "failed: %s" % s["error"]))
                continue
            add("%-20s %10s %8s %8s %10s %8s %9s %10s %9s %7s %7s %7s %6s %7s %-8s %s" % (
                variant, num(s["playbook_s"], "%.2f"), num(s["task_s"], "%.2f"), num(s["module_s"], "%.2f"),
                num(s["duration_s"], "%.2f"), num(s["check_s"], "%.2f"), num(s["restore_s"], "%.2f"),
                num(s["validate_s"], "%.2f"), num(s["analyze_s"], "%.2f"), num(s["swap_s"], "%.2f"),
                num(s["other_s"], "%.2f"), num(s["cpu_s"], "%.2f"), num(s["hwm_mb"], "%.0f"),
                num(s["tree_peak_mb"], "%.0f"), s["path"] or "-", s["validation"] or "-"))
        add("  module_restore: validate false, analyze false (the same work as pg_restore); module_restore_full: the")
        add("  defaults, validate true and analyze true. For the pg_restore rows task_s = restore_s = the pg_restore")
        add("  process's wall time, cpu_s = its CPU time and its workers' (the server's is in neither).")
        add("")
        ratios = {}
        add("ratios, module / raw pg_restore (goal <= 1.10, validation timed separately):")
        raw_tcp, raw_sock = sums["pg_restore_tcp_ssl"], sums["pg_restore_socket"]
        for variant in ("module_restore", "module_restore_full"):
            m = sums[variant]
            r = {"task_vs_tcp_ssl": ratio(m["task_s"], raw_tcp["task_s"]),
                 "playbook_vs_tcp_ssl": ratio(m["playbook_s"], raw_tcp["task_s"]),
                 "restore_vs_tcp_ssl": ratio(m["restore_s"], raw_tcp["task_s"]),
                 "task_vs_socket": ratio(m["task_s"], raw_sock["task_s"]),
                 "restore_vs_socket": ratio(m["restore_s"], raw_sock["task_s"])}
            ratios[variant] = r
            goal = ""
            if variant == "module_restore" and r["task_vs_tcp_ssl"] is not None:
                goal = "  -> task goal met" if r["task_vs_tcp_ssl"] <= 1.10 else "  -> task goal NOT met"
            add("  %-19s vs pg_restore over TCP+SSL: task %s, playbook %s, restore phase %s; vs pg_restore over the"
                " socket: task %s, restore phase %s%s"
                % (variant, num(r["task_vs_tcp_ssl"], "%.2fx"), num(r["playbook_vs_tcp_ssl"], "%.2fx"),
                   num(r["restore_vs_tcp_ssl"], "%.2fx"), num(r["task_vs_socket"], "%.2fx"),
                   num(r["restore_vs_socket"], "%.2fx"), goal))
        lean, full = sums["module_restore"], sums["module_restore_full"]
        if lean["task_s"] is not None and full["task_s"] is not None:
            add("  validate and analyze (module_restore_full minus module_restore): %.2f s of task time; the full run's"
                " validate_s %s, analyze_s %s" % (full["task_s"] - lean["task_s"], num(full["validate_s"], "%.2f s"),
                                                  num(full["analyze_s"], "%.2f s")))
        for variant in ("module_restore", "module_restore_full"):
            m = sums[variant]
            needed = (m["playbook_s"], m["task_s"], m["module_s"], m["duration_s"], m["check_s"], m["restore_s"],
                      m["swap_s"], m["other_s"])
            if None in needed:
                continue
            add("  %-19s playbook %.2f s ~ ansible-playbook start/exit %.2f + Ansible's task handling %.2f + module"
                " process start/exit %.2f + connect/lock/create database %.2f + check %.2f + restore phase %.2f%s"
                " + swap %.2f"
                % (variant, m["playbook_s"], m["playbook_s"] - m["task_s"], m["task_s"] - m["module_s"],
                   m["module_s"] - m["duration_s"], m["other_s"], m["check_s"], m["restore_s"],
                   "" if m["validate_s"] is None else " + validate %.2f + analyze %.2f"
                   % (m["validate_s"], m["analyze_s"] or 0), m["swap_s"]))
        if lean["task_s"] is not None and lean["restore_s"] is not None:
            fixed = lean["task_s"] - lean["restore_s"]
            ratios["module_restore_fixed_s"] = fixed
            add("  module_restore: %.2f s of its task time is outside the restore phase (Ansible, the module's"
                " start, the check pass, connect/create/swap)" % fixed)
        add("  check = the check pass: the whole stored dump read once for its sha256, then pg_restore --list;")
        add("  restore phase = timings.restore_s: pg_restore -j %d reading the stored file itself (path direct);" % JOBS)
        add("  other = the module's duration_s minus its phases; module_s - duration_s = the module process's Python")
        add("  start-up, imports and exit, and reading the manifest; task_s - module_s = Ansible's own work for the")
        add("  task; playbook_s - task_s = ansible-playbook's start-up and exit (medians of each part, so the parts")
        add("  need not add up exactly).")
        add("")
        add("2. S3 (moto on loopback; validate and analyze off): the S3 backup with jobs 1 and 2, the local dump with"
            " jobs 1")
        head2 = "%-16s %4s %-8s %10s %8s %8s %10s %8s %9s %7s %11s %13s %10s %12s" % (
            "variant", "jobs", "path", "playbook_s", "task_s", "module_s", "duration_s", "check_s", "restore_s",
            "cpu_s", "py_peak_MB", "tree_peak_MB", "maxrss_MB", "moto_RSS_MB")
        add(head2)
        add("-" * len(head2))
        s3sums = {}
        for variant in S3_VARIANTS:
            s = self.summary("s3", variant)
            s3sums[variant] = s
            if not s["ok"]:
                add("%-16s   %s" % (variant, "not run" if not s["runs"] else "failed: %s" % s["error"]))
                continue
            add("%-16s %4s %-8s %10s %8s %8s %10s %8s %9s %7s %11s %13s %10s %12s" % (
                variant, variant[-1], s["path"] or "-", num(s["playbook_s"], "%.2f"), num(s["task_s"], "%.2f"),
                num(s["module_s"], "%.2f"), num(s["duration_s"], "%.2f"), num(s["check_s"], "%.2f"), num(s["restore_s"], "%.2f"),
                num(s["cpu_s"], "%.2f"), num(s["hwm_mb_max"], "%.0f"), num(s["tree_peak_mb_max"], "%.0f"),
                num(s["maxrss_mb_max"], "%.0f"), num(s["moto_rss_after_mb"], "%.0f")))
        local1, s3j1, s3j2 = s3sums["module_local_j1"], s3sums["module_s3_j1"], s3sums["module_s3_j2"]
        r = {"s3_j1_vs_local_j1_task": ratio(s3j1["task_s"], local1["task_s"]),
             "s3_j2_vs_local_j2_task": ratio(s3j2["task_s"], lean["task_s"]),
             "s3_j2_vs_s3_j1_task": ratio(s3j2["task_s"], s3j1["task_s"])}
        ratios["s3"] = r
        if any(v is not None for v in r.values()):
            add("  task time: S3 jobs 1 / local jobs 1 %s; S3 jobs 2 / local jobs 2 (module_restore, part 1) %s;"
                " S3 jobs 2 / S3 jobs 1 %s"
                % (num(r["s3_j1_vs_local_j1_task"], "%.2fx"), num(r["s3_j2_vs_local_j2_task"], "%.2fx"),
                   num(r["s3_j2_vs_s3_j1_task"], "%.2fx")))
        size = (self.backup.get("s3") or {}).get("size_bytes")
        if size:
            add("  the object (%.1f MB) is read from S3 twice by the streamed path (check pass, then again into" % (size / MIB))
            add("  pg_restore: %.1f MB) and once by the spooled path (the check pass writes a %.1f MB local copy into"
                % (2 * size / MIB, size / MIB))
            add("  work_dir, which pg_restore -j 2 then reads); the direct path reads the local file (check, then")
            add("  pg_restore).")
        add("  streamed: a custom archive from a pipe cannot be restored in parallel, hence jobs 1; check_s = the")
        add("  check pass (sha256, pg_restore --list; for spooled also writing the local copy).")
        add("  module_s - duration_s = the module process's start-up, imports and exit, and finding the backup and")
        add("  reading its manifest before the module's clock starts (from S3: boto3 imported, requests to moto).")
        add("  py_peak = the module's Python process alone (VmHWM; the largest of the runs); tree_peak = sampled peak of")
        add("  the RSS summed over it and its children (pg_restore and its workers); maxrss = wait4's largest single")
        add("  process; moto_RSS = the S3 server after the run (it keeps the object in memory).")
        failed = [x for x in self.runs if not x["ok"]]
        if failed:
            add("")
            add("%d run(s) failed (not in the medians):" % len(failed))
            for x in failed:
                add("  %s: %s" % (x["name"], x["error"] or "exit status only (killed?)"))
        text = "\n".join(lines)
        print(text, flush=True)
        return text, ratios, {"time": [sums[k] for k in TIME_VARIANTS], "s3": [s3sums[k] for k in S3_VARIANTS]}


def stage2(args):
    meta = {"versions": versions(), "cpus": os.cpu_count(), "args": vars(args), "loadavg_start": os.getloadavg()}
    say("== load average at start: %.2f %.2f %.2f" % tuple(meta["loadavg_start"]))
    bench = Bench(args)
    say("== results in %s" % os.path.relpath(bench.out_dir, REPO))
    t_start = time.monotonic()
    try:
        say("== starting a throw-away server")
        bench.start_server()
        bench.pg_restore_version = bench.tool_version("pg_restore")
        bench.prepare_ansible()
        say("== %s; ansible-core %s" % (bench.pg_restore_version, bench.ansible_core))
        say("== creating the pgbench database")
        bench.create_pgbench(args.scale)
        say("== the backup (module: custom, gzip 6, dest, verify none)")
        bench.take_backup("local")
        if not args.skip_time:
            bench.section_time()
        if not args.skip_s3:
            say("== starting moto (S3 on loopback); the S3 backup (module: custom, gzip 6, s3 only, verify none)")
            bench.start_s3()
            bench.take_backup("s3")
            bench.section_s3()
    finally:
        bench.cleanup(bench.backups, bench.spool)
    meta["loadavg_end"] = os.getloadavg()
    meta["total_s"] = round(time.monotonic() - t_start, 1)
    text, ratios, summaries = bench.report(meta)
    bench.write_results(text, {"meta": meta, "databases": bench.databases, "backups": bench.backup,
                               "summaries": summaries, "ratios": ratios, "runs": bench.runs})
    say("load average at end: %.2f %.2f %.2f" % tuple(meta["loadavg_end"]))
    say("total %.0f s; details in %s" % (meta["total_s"], os.path.relpath(bench.out_dir, REPO)))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=textwrap.dedent(__doc__.split("\n\n", 1)[1]))
    parser.add_argument("--scale", type=int, default=50, help="pgbench scale of the database (default 50)")
    parser.add_argument("--reps", type=int, default=3,
                        help="measured runs of each variant in the time comparison, after one warm-up (default 3)")
    parser.add_argument("--aux-reps", type=int, default=2, help="runs of each S3 variant (default 2)")
    parser.add_argument("--skip-time", action="store_true", help="leave out the time comparison")
    parser.add_argument("--skip-s3", action="store_true", help="leave out the S3 part")
    parser.add_argument("--results-dir", help="default: benchmarks/results/<UTC time>-restore")
    args = parser.parse_args(argv)
    reexec_in_venv(__file__, argv)
    return stage2(args)


if __name__ == "__main__":
    sys.exit(main())
