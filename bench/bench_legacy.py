"""Benchmark: full legacy load and one incremental day, at a scale factor.

    SMARTREHAB_VAR_DIR=var/bench SMARTREHAB_PG_PORT=5440 .venv/bin/python bench/bench_legacy.py --sf 0.1

Measures wall time, rows per second and peak memory (sum of RSS of this process and its
children, the Spark JVM included, sampled every 0.5 s), and appends a row to bench/results.md
with the machine and the date.
"""

from __future__ import annotations

import argparse
import os
import shutil
import threading
import time
from datetime import date, datetime

from measure import TreeSampler, append_result, machine


class PeakRss:
    """Peak summed RSS of this process and its children (the Spark JVM), sampled every 0.5 s."""

    def __init__(self):
        self._sampler = TreeSampler(os.getpid())
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    @property
    def peak(self) -> int:
        return self._sampler.peak

    def _run(self):
        while not self._stop.is_set():
            self._sampler.sample()
            time.sleep(0.5)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sf", type=float, default=0.1)
    ap.add_argument("--as-of", default="2026-11-20")
    args = ap.parse_args()
    from smartrehab import services
    from smartrehab.catalog import load_catalog
    from smartrehab.generate.legacy import generate
    from smartrehab.settings import get_settings
    from smartrehab.spark import get_spark
    from spark_jobs.legacy import ingest

    s = get_settings()
    services.start_postgres(s)
    services.ensure_metastore(s)
    shutil.rmtree(s.landing_dir, ignore_errors=True)
    t = time.time()
    deliveries = generate(load_catalog(s.catalog_dir), s.landing_dir, args.sf, s.seed,
                          date.fromisoformat(args.as_of), days=1, tables=s.legacy_table_list)
    gen_s = time.time() - t
    spark = get_spark("bench", s)
    for db in ("bronze", "silver", "quarantine", "audit"):
        for tb in spark.catalog.listTables(db):
            spark.sql(f"drop table if exists {db}.{tb.name}")
    rows = [sum(d.rows.values()) for d in deliveries]
    timings = []
    with PeakRss() as mem:
        for d in deliveries:
            t = time.time()
            ingest.run(spark, s, days=[d.day], log=lambda _m: None)
            timings.append(time.time() - t)
    tables = len(deliveries[0].files)
    line = (f"| {datetime.now():%Y-%m-%d} | {machine()} | legacy SF{args.sf}, {tables} tables | "
            f"full: {rows[0]} rows in {timings[0]:.0f} s ({rows[0] / timings[0]:.0f} rows/s) | "
            f"incremental day: {rows[1]} rows in {timings[1]:.0f} s | peak RSS {mem.peak / 2**30:.2f} GiB | "
            f"generation {gen_s:.0f} s |\n")
    append_result(line)
    print(line)


if __name__ == "__main__":
    main()
