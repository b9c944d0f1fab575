"""Fixed cost of one Delta operation on this machine: a 1-row append and a 1-row MERGE, one thread and four.

    SMARTREHAB_VAR_DIR=... flock /tmp/smartrehab-spark.lock .venv/bin/python bench/bench_delta_ops.py

The floor under the legacy incremental day: every delivered file costs at least one bronze append and one
silver MERGE (or append), whatever its size. Eight tables of the ``bench_scratch`` database (dropped at the
end) each get one row per operation; after two warm-up rounds, it reports the wall time per operation and
the CPU the driver JVM spent per operation (from /proc, the JVM being this process's child in local mode),
sequentially and on ``--threads`` threads sharing the session. Appends one row to ``bench/results.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import _children, append_result, machine  # noqa: E402

DB = "bench_scratch"
TABLES = 8


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _jvm_pid() -> int:
    todo, seen = [os.getpid()], []
    tree = _children()
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(tree.get(p, []))
    for p in seen[1:]:
        try:
            if Path(f"/proc/{p}/comm").read_text().strip() == "java":
                return p
        except OSError:
            continue
    raise RuntimeError("no driver JVM among this process's descendants")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args(argv)

    from delta.tables import DeltaTable

    from smartrehab import jars, services
    from smartrehab.settings import get_settings
    from smartrehab.spark import get_spark

    s = get_settings()
    jars.fetch_jars(s)
    services.start_postgres(s)
    services.ensure_metastore(s)
    spark = get_spark("bench-delta-ops", s)
    jvm = _jvm_pid()
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {DB}")
    for i in range(TABLES):
        spark.sql(f"DROP TABLE IF EXISTS {DB}.t{i}")
        spark.sql(f"CREATE TABLE {DB}.t{i} (k STRING, v STRING, n BIGINT) USING delta")

    def append(i: int) -> None:
        (spark.createDataFrame([(f"k{i}", "a", 1)], "k string, v string, n long")
         .write.format("delta").mode("append").saveAsTable(f"{DB}.t{i}"))

    def merge(i: int) -> None:
        src = spark.createDataFrame([(f"k{i}", "m", 2)], "k string, v string, n long")
        (DeltaTable.forName(spark, f"{DB}.t{i}").alias("t").merge(src.alias("s"), "t.k = s.k")
         .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())

    def timed(fn, threads: int) -> tuple[float, float]:
        c0, t0 = _cpu_s(jvm), time.monotonic()
        if threads == 1:
            for i in range(TABLES):
                fn(i)
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(fn, range(TABLES)))
        return (time.monotonic() - t0) / TABLES, (_cpu_s(jvm) - c0) / TABLES

    for _ in range(2):                                  # JIT, codegen and snapshot caches warm
        timed(append, 1)
        timed(merge, 1)
    out = {}
    for threads in (1, args.threads):
        for name, fn in (("append", append), ("merge", merge)):
            out[(name, threads)] = timed(fn, threads)
            print(f"{name} on {threads} thread(s): {out[(name, threads)][0]:.2f} s wall, "
                  f"{out[(name, threads)][1]:.2f} s JVM CPU per operation", flush=True)
    for i in range(TABLES):
        spark.sql(f"DROP TABLE IF EXISTS {DB}.t{i}")
    spark.sql(f"DROP DATABASE IF EXISTS {DB}")

    def cell(name: str, threads: int) -> str:
        wall, cpu = out[(name, threads)]
        return f"{wall:.2f} s wall / {cpu:.2f} s JVM CPU"

    line = (f"| {datetime.now():%Y-%m-%d} | {machine()} | `bench/bench_delta_ops.py --threads {args.threads}` "
            f"(1-row Delta operations, warm session, per operation) "
            f"| | 1 thread: append {cell('append', 1)}, MERGE {cell('merge', 1)}; "
            f"{args.threads} threads: append {cell('append', args.threads)}, MERGE {cell('merge', args.threads)} "
            f"| | floor of a legacy file (bronze append + silver MERGE) on one thread: "
            f"{out[('append', 1)][0] + out[('merge', 1)][0]:.2f} s |\n")
    append_result(line)
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
