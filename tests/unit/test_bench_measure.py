"""bench/measure.py: the peak memory of a process tree, the figure every benchmark row reports."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench_measure", REPO / "bench" / "measure.py")
measure = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(measure)

MIB = 2**20
BALLAST_MIB = 300

# A parent holding 300 MiB starts a child with posix_spawn (as a JVM starts every subprocess); the
# child's first file action opens a FIFO for reading, so it waits there, before its exec, in the
# parent's address space until the test writes to the FIFO.
SPAWNER = textwrap.dedent(f"""
    import os, sys
    ballast = bytearray({BALLAST_MIB} * 2**20)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    print("ready", flush=True)
    pid = os.posix_spawn("/bin/true", ["/bin/true"], dict(os.environ),
                         file_actions=[(os.POSIX_SPAWN_OPEN, 3, sys.argv[1], os.O_RDONLY, 0)])
    os.waitpid(pid, 0)
""")


def _wait_for_child(pid: int) -> int:
    for _ in range(200):
        kids = measure._children().get(pid, [])
        if kids:
            return kids[0]
        time.sleep(0.05)
    raise AssertionError("the spawner started no child")


@pytest.mark.skipif(measure._KCMP is None, reason="kcmp(2) number unknown on this architecture")
def test_a_child_before_exec_is_not_counted_twice(tmp_path):
    fifo = tmp_path / "hold"
    os.mkfifo(fifo)
    proc = subprocess.Popen([sys.executable, "-c", SPAWNER, str(fifo)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        child = _wait_for_child(proc.pid)
        parent_rss, child_rss = measure._rss(proc.pid), measure._rss(child)
        # The situation the sampler has to handle: /proc gives the waiting child the parent's RSS.
        assert child_rss >= BALLAST_MIB * MIB and abs(child_rss - parent_rss) < 8 * MIB
        assert measure.shares_address_space(proc.pid, child)

        total = measure.TreeSampler(proc.pid).sample()
        assert parent_rss - 8 * MIB <= total <= parent_rss + 8 * MIB
    finally:
        try:  # without blocking: if the spawner died before its child opened the FIFO, there is no reader
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.write(fd, b"go")
            os.close(fd)
        except OSError:
            proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == 0


def test_a_forked_child_with_memory_of_its_own_is_counted(tmp_path):
    # A forked child (a PySpark worker from its daemon) has its own address space: its RSS adds up.
    code = textwrap.dedent(f"""
        import os, sys, time
        pid = os.fork()
        if pid == 0:
            mine = bytearray({BALLAST_MIB} * 2**20)
            for i in range(0, len(mine), 4096):
                mine[i] = 1
            print("ready", flush=True)
            time.sleep(60)
            os._exit(0)
        os.waitpid(pid, 0)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        child = _wait_for_child(proc.pid)
        assert not measure.shares_address_space(proc.pid, child)
        total = measure.TreeSampler(proc.pid).sample()
        assert total >= BALLAST_MIB * MIB + measure._rss(proc.pid) - 8 * MIB
    finally:
        for pid in measure._children().get(proc.pid, []):
            os.kill(pid, 9)
        proc.wait(timeout=30)
