"""Watching and killing the processes a test run starts, through /proc."""

import contextlib
import glob
import os
import signal
import threading
import time


def _parents():
    """{pid: parent pid} of every process now."""
    parents = {}
    for path in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(path) as handle:
                parents[int(path.split("/")[2])] = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            pass  # it exited meanwhile
    return parents


def descendants(ancestor, parents=None):
    """The pids of every process now running below `ancestor`."""
    children = {}
    for pid, parent in (parents or _parents()).items():
        children.setdefault(parent, []).append(pid)
    found, todo = set(), list(children.get(ancestor, ()))
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


@contextlib.contextmanager
def command_lines_seen(ancestor=None):
    """Collect the command line (bytes, NUL-separated) of every process started below
    `ancestor` (default: this process) while the block runs: what anyone on the machine
    could read in `ps` of what this test ran. Processes of other work on the machine,
    such as another pytest-xdist worker's, are not counted either way."""
    ancestor = ancestor or os.getpid()
    seen, stop = set(), threading.Event()

    def scan():
        while not stop.is_set():
            for pid in descendants(ancestor):
                try:
                    with open("/proc/%d/cmdline" % pid, "rb") as handle:
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
