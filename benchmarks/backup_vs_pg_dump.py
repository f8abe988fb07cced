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
the module process's wall time, CPU time and memory (see WRAPPER in benchmarks/common.py, which
holds what this script shares with restore_vs_pg_restore.py).

Usage (~4 minutes on 2 cores at the default scales; `make venv` first):
    python3 benchmarks/backup_vs_pg_dump.py [--reps 3] [--aux-reps 2] [--small-scale 5] [--large-scale 50]

Results (summary.txt, summary.json, each run's ansible output) go to
benchmarks/results/<UTC time>-backup/ (ignored by git). Not part of `make test`.
"""

import argparse
import os
import platform
import re
import shutil
import sys
import textwrap
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (BACKUP_PLAYBOOK, MIB, REPO, BenchBase, num, parse_time, ratio, reexec_in_venv,  # noqa: E402
                    rotated, say, summarize, tree_size, versions, wait_timed)

MODULE_FILE = os.path.join(REPO, "plugins", "modules", "backup.py")

# The time comparison: raw pg_dump twice (socket, TCP+SSL), the module twice (verify list, none).
TIME_VARIANTS = ("pg_dump_socket", "pg_dump_tcp_ssl", "module_verify_list", "module_verify_none")
# Directory format: the module with jobs 1 and 2, and raw pg_dump -Fd -j 1 / 2 beside it.
DIR_VARIANTS = ("pg_dump_dir_j1", "pg_dump_dir_j2", "module_dir_j1", "module_dir_j2")
COMPRESSIONS = ("gzip", "zstd", "lz4", "none")
# S3: gzip as the issue asks and, because pgbench's rows compress ~55:1 (the scale-50 dump is
# ~13 MB, less than one 16 MiB part), also uncompressed, which makes both scales multipart uploads.
S3_VARIANTS = (("module_s3_gzip", "gzip", 6), ("module_s3_none", "none", None))


# The result keys of the backup module the benchmark reads (the callback also keeps the manifest's
# times, compression and row counts).
KEEP = ("size_bytes", "sha256", "duration_s", "verified", "verification", "locations", "stages", "msg", "failed",
        "changed", "backup_id")


def directory_format_available():
    """Whether the module offers format: directory and jobs (the issue's second comparison)."""
    with open(MODULE_FILE) as handle:
        text = handle.read()
    spec = re.search(r"\bformat=dict\((.*)", text)
    return bool(spec and '"directory"' in spec.group(1) and re.search(r"\bjobs=dict\(", text))


class Bench(BenchBase):
    def __init__(self, args):
        super().__init__(args, "backup", subdirs=("dumps",))
        self.dumps = os.path.join(self.work, "dumps")

    def prepare_ansible(self):
        super().prepare_ansible({"backup.yml": BACKUP_PLAYBOOK}, keep=KEEP)
        try:
            from ansible_collections.pgops.runbook.plugins.module_utils.storage import s3 as s3_storage
            self.part_size = s3_storage.DEFAULT_PART_SIZE
        except ImportError:
            self.part_size = None

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

    # -- one run --------------------------------------------------------------------------
    def run_pg_dump(self, scale, over, section, warmup=False, jobs=None):
        """Raw pg_dump -Fc -f FILE, default compression, over the socket or TCP+SSL;
        with `jobs`, pg_dump -Fd -j JOBS -f DIR over the socket."""
        variant = "pg_dump_dir_j%d" % jobs if jobs else "pg_dump_" + over
        name = self.next_name("%s-s%d%s" % (variant, scale, "-warmup" if warmup else ""))
        target = os.path.join(self.dumps, name + ".dump")
        conn_args, env = self.client_args(over)
        fmt = ["-Fd", "-j", str(jobs)] if jobs else ["-Fc"]
        argv = [os.path.join(self.bindir, "pg_dump")] + fmt + ["-f", target] + conn_args + [self.db_name(scale)]
        returncode, wall, cpu_s, maxrss_mb, err = wait_timed(argv, env, os.path.join(self.work, name + ".stderr"))
        size = tree_size(target) if os.path.exists(target) else None
        if os.path.isdir(target):
            shutil.rmtree(target)
        elif os.path.exists(target):
            os.unlink(target)
        rec = {"name": name, "section": section, "variant": variant, "scale": scale, "warmup": warmup,
               "loadavg_1m": os.getloadavg()[0],
               "ok": returncode == 0, "error": err, "playbook_s": None, "task_s": wall,
               "wall_s": wall, "cpu_s": cpu_s, "maxrss_mb": maxrss_mb,
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
        values = dict(self.connection_values(), bench_db=self.db_name(scale), bench_compression=compression,
                      bench_verify=verify)
        if level is not None:
            values["bench_level"] = level
        if jobs is not None:
            values.update(bench_format="directory", bench_jobs=jobs)
        if to_s3:
            values["bench_s3"] = self.s3
        else:
            os.makedirs(dest)
            values["bench_dest"] = dest
        moto_before = self.moto_rss_mb() if to_s3 else None
        run = self.run_playbook(name, "backup.yml", values)
        res, ok, wall = run["res"], run["ok"], run["playbook_s"]
        manifest = res.get("manifest") or {}
        started, finished = parse_time(manifest.get("started_at")), parse_time(manifest.get("finished_at"))
        dump_s = finished - started if started and finished else None
        rec = {
            "name": name, "section": section, "variant": variant, "scale": scale, "warmup": warmup,
            "loadavg_1m": os.getloadavg()[0], "compression": compression, "level": level, "verify": verify, "s3": to_s3,
            "ok": ok, "error": run["error"], "playbook_s": wall,
        }
        rec.update((k, run[k]) for k in ("task_s", "module_s", "cpu_s", "hwm_mb", "maxrss_mb", "tree_peak_mb"))
        rec.update({
            "duration_s": res.get("duration_s"), "dump_s": dump_s,
            "rest_s": res["duration_s"] - dump_s if dump_s is not None and res.get("duration_s") is not None else None,
            "size_bytes": res.get("size_bytes"), "verification": res.get("verification"),
            "stages": res.get("stages"), "locations": res.get("locations"),
            "snapshot_rows": manifest.get("snapshot_rows"), "compression_recorded": manifest.get("compression"),
            "moto_rss_before_mb": moto_before, "moto_rss_after_mb": self.moto_rss_mb() if to_s3 else None,
        })
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
            for variant in rotated(TIME_VARIANTS, rep):
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
            for variant in rotated(DIR_VARIANTS, rep):
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
    def summary(self, section, variant, scale):
        runs = self.measured(section, variant, scale)
        good = [r for r in runs if r["ok"]]
        out = {"section": section, "variant": variant, "scale": scale}
        out.update(summarize(runs, ("playbook_s", "task_s", "module_s", "cpu_s", "duration_s", "dump_s", "rest_s",
                                    "size_bytes", "hwm_mb", "maxrss_mb", "tree_peak_mb", "moto_rss_after_mb"),
                             max_keys=("hwm_mb", "tree_peak_mb", "maxrss_mb")))
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
        low, high = self.load_range()
        add("%d CPUs; load average %.2f at start, %.2f at end, %.2f-%.2f at the start of the runs (other work on the"
            " machine skews times)" % (os.cpu_count(), meta["loadavg_start"][0], meta["loadavg_end"][0],
                                       low, high))
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
        bench.cleanup(bench.dumps)
    meta["loadavg_end"] = os.getloadavg()
    meta["total_s"] = round(time.monotonic() - t_start, 1)
    text, ratios, summaries = bench.report(meta)
    bench.write_results(text, {"meta": meta, "databases": bench.databases, "summaries": summaries, "ratios": ratios,
                               "runs": bench.runs})
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
    reexec_in_venv(__file__, argv)
    return stage2(args)


if __name__ == "__main__":
    sys.exit(main())
