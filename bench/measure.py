"""Wall time and peak memory of a whole command (its process tree, services it starts included).

    python3 bench/measure.py -- make demo

Standard library only, so it can time the README's first command on a machine that has no
virtualenv yet. Every second it sums the RSS (from /proc) of the command and of every process
that descends from it, including services that detach later (once seen, a process is followed
until it exits), and appends a row to bench/results.md with the machine and the date.
"""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

RESULTS = Path(__file__).with_name("results.md")
HEADER = ("# Benchmark results\n\nEvery row was appended by the script named in its `run` column.\n\n"
          "| date | machine | run | full load | incremental | memory | other |\n|---|---|---|---|---|---|---|\n")


def machine() -> str:
    mem = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    return f"{platform.node()} {os.cpu_count()} cores {mem / 2**30:.0f} GiB {platform.machine()}"


def append_result(line: str) -> None:
    if not RESULTS.exists():
        RESULTS.write_text(HEADER)
    with RESULTS.open("a") as fh:
        fh.write(line)


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


_LIBC = ctypes.CDLL(None, use_errno=True)
_KCMP = {"x86_64": 312, "aarch64": 272}.get(platform.machine())  # kcmp(2) system call number
_KCMP_VM = 1  # kcmp type KCMP_VM: are the two address spaces one?


def shares_address_space(a: int, b: int) -> bool:
    """Whether processes a and b have one address space. A child between vfork/posix_spawn and its exec
    does (a JVM starts every subprocess that way), and /proc gives it the parent's whole RSS: summed
    naively, a Spark driver's memory counts twice for as long as such a child is seen. False when the
    kernel cannot tell (no kcmp)."""
    if _KCMP is None:
        return False
    return _LIBC.syscall(_KCMP, a, b, _KCMP_VM, 0, 0) == 0


def _rss(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return None


def _cpu(pid: int) -> float | None:
    """User + system CPU seconds of a process so far."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class TreeSampler:
    """Peak of the summed RSS of a process tree; processes once seen stay followed."""

    def __init__(self, root: int):
        self.followed = {root}
        self.peak = 0
        # Last CPU seconds read of every process followed, kept after it exits (its last sample).
        self.cpu: dict[int, float] = {}

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) of the tree so far: a process that exited counts up to its last
        sample, so the figure is a lower bound by at most one sampling interval of each such process."""
        self.sample()
        return sum(self.cpu.values())

    def sample(self) -> int:
        kids = _children()
        stack = list(self.followed)
        while stack:
            for k in kids.get(stack.pop(), []):
                if k not in self.followed:
                    self.followed.add(k)
                    stack.append(k)
        parent = {k: p for p, ks in kids.items() for k in ks}
        total = 0
        for pid in list(self.followed):
            rss, cpu = _rss(pid), _cpu(pid)
            if rss is None:
                self.followed.discard(pid)
            elif not (parent.get(pid) in self.followed and shares_address_space(parent[pid], pid)):
                total += rss
            if cpu is not None:
                self.cpu[pid] = cpu
        self.peak = max(self.peak, total)
        return total


class PeakRss:
    """Context manager: peak summed RSS of this process and its children (a Spark JVM, dbt), sampled
    every half second in a background thread."""

    def __init__(self):
        self._sampler = TreeSampler(os.getpid())
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._t = threading.Thread(target=self._run, daemon=True)

    @property
    def peak(self) -> int:
        return self._sampler.peak

    def cpu_seconds(self) -> float:
        """CPU seconds of this process and its children so far (see TreeSampler.cpu_seconds)."""
        with self._lock:
            return self._sampler.cpu_seconds()

    def _run(self):
        while not self._stop.is_set():
            with self._lock:
                self._sampler.sample()
            time.sleep(0.5)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def main() -> int:
    cmd = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    if not cmd:
        print(__doc__, file=sys.stderr)
        return 2
    t0 = time.time()
    proc = subprocess.Popen(cmd)
    sampler = TreeSampler(proc.pid)
    while proc.poll() is None:
        sampler.sample()
        time.sleep(1)
    wall = time.time() - t0
    line = (f"| {datetime.now():%Y-%m-%d} | {machine()} | `bench/measure.py -- {' '.join(cmd)}` (exit {proc.returncode}) "
            f"| wall {wall / 60:.1f} min | | peak RSS {sampler.peak / 2**30:.2f} GiB (command and every process it started) | |\n")
    append_result(line)
    print(line, flush=True)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
