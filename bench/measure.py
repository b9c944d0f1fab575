"""Wall time and peak memory of a whole command (its process tree, services it starts included).

    .venv/bin/python bench/measure.py -- make demo

Samples the summed RSS of the command and all its descendants every second, and appends a row
to bench/results.md with the machine and the date.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).parent))
from bench_legacy import RESULTS, machine  # noqa: E402


def main() -> int:
    cmd = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    t0 = time.time()
    proc = subprocess.Popen(cmd)
    root = psutil.Process(proc.pid)
    seen: dict[int, psutil.Process] = {}
    peak = 0
    while proc.poll() is None:
        try:
            for p in [root, *root.children(recursive=True)]:
                seen.setdefault(p.pid, p)
        except psutil.Error:
            pass
        total = 0
        for p in list(seen.values()):
            try:
                total += p.memory_info().rss
            except psutil.Error:
                seen.pop(p.pid, None)
        peak = max(peak, total)
        time.sleep(1)
    wall = time.time() - t0
    line = (f"| {datetime.now():%Y-%m-%d} | {machine()} | `{' '.join(cmd)}` (exit {proc.returncode}) | "
            f"wall {wall / 60:.1f} min | | peak RSS {peak / 2**30:.2f} GiB (command and every process it started) | |\n")
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\n| date | machine | run | full load | incremental | memory | other |\n"
                           "|---|---|---|---|---|---|---|\n")
    with RESULTS.open("a") as fh:
        fh.write(line)
    print(line, flush=True)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
