"""Watching and killing the processes a test run starts, through /proc."""

import contextlib
import glob
import os
import signal
import threading
import time


@contextlib.contextmanager
def command_lines_seen():
    """Collect every process's command line (bytes, NUL-separated) while the block runs:
    the set it yields is what anyone on the machine could read in `ps`."""
    seen, stop = set(), threading.Event()

    def scan():
        while not stop.is_set():
            for path in glob.glob("/proc/[0-9]*/cmdline"):
                try:
                    with open(path, "rb") as handle:
                        seen.add(handle.read())
                except OSError:
                    pass

    scanner = threading.Thread(target=scan)
    scanner.start()
    try:
        yield seen
    finally:
        stop.set()
        scanner.join()


def descends_from(pid, ancestor):
    """Whether process `pid` is a descendant of `ancestor` (so other work on the machine is left alone)."""
    while pid > 1:
        with open("/proc/%d/stat" % pid) as handle:
            pid = int(handle.read().rsplit(")", 1)[1].split()[1])
        if pid == ancestor:
            return True
    return False


def kill_when_running(program, delay, found, ancestor=None, argument=None):
    """SIGKILL the first `program` (by name) descending from `ancestor` (default: this
    process) `delay` s after it starts working; the tools' `--version` probes, which come
    and go first, are not it, nor (with `argument`) runs whose command line lacks that
    argument. The pid killed is appended to `found`."""
    ancestor = ancestor or os.getpid()
    deadline = time.time() + 30
    while time.time() < deadline:
        for path in glob.glob("/proc/[0-9]*/comm"):
            try:
                with open(path) as handle:
                    if handle.read().strip() != program:
                        continue
                if not descends_from(int(path.split("/")[2]), ancestor):
                    continue
                with open(path[:-4] + "cmdline", "rb") as handle:
                    cmdline = handle.read()
                if not cmdline or b"--version" in cmdline:  # an exited probe (a zombie has none)
                    continue
                if argument and not any(arg.startswith(argument.encode()) for arg in cmdline.split(b"\0")):
                    continue
                pid = int(path.split("/")[2])
                time.sleep(delay)
                os.kill(pid, signal.SIGKILL)
                found.append(pid)
                return
            except (OSError, ValueError):
                pass
        time.sleep(0.005)
