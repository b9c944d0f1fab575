"""Benchmark: full legacy load and one incremental day, at a scale factor.

    SMARTREHAB_VAR_DIR=var/bench SMARTREHAB_PG_PORT=5440 .venv/bin/python bench/bench_legacy.py --sf 0.1

Measures wall time, rows per second and peak memory (sum of RSS of this process and its
children, the Spark JVM included, sampled every 0.5 s), and appends a row to bench/results.md
with the machine and the date.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from datetime import date, datetime

from measure import PeakRss, append_result, machine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sf", type=float, default=0.1)
    ap.add_argument("--as-of", default="2026-11-20")
    ap.add_argument("--verbose", action="store_true", help="print one line per file loaded")
    ap.add_argument("--incremental-only", action="store_true",
                    help="with --reuse: keep the lake (full extract loaded by an earlier run) and time the later days only")
    ap.add_argument("--restore-before", metavar="TIMESTAMP",
                    help="with --incremental-only: first put every bronze/silver/quarantine/audit table back to its last "
                         "version committed before TIMESTAMP (session time zone), e.g. the end of the full load, so the "
                         "same incremental day can be timed again")
    ap.add_argument("--generate-only", action="store_true", help="write the deliveries and stop (no JVM)")
    ap.add_argument("--reuse", action="store_true",
                    help="load the deliveries already in the landing zone (from --generate-only) instead of regenerating")
    args = ap.parse_args()
    from smartrehab import jars, services
    from smartrehab.catalog import load_catalog
    from smartrehab.generate.legacy import generate
    from smartrehab.settings import get_settings
    from smartrehab.spark import get_spark
    from spark_jobs.legacy import ingest

    s = get_settings()
    manifests = s.landing_dir / "_generator"
    if args.reuse:
        days = []
        for m in sorted(manifests.glob("legacy_*.json")):
            doc = json.loads(m.read_text(encoding="utf-8"))
            days.append((date.fromisoformat(doc["day"]), sum(doc["rows"].values()), len(doc["rows"])))
        gen_s = float("nan")
    else:
        shutil.rmtree(s.landing_dir, ignore_errors=True)
        t = time.time()
        deliveries = generate(load_catalog(s.catalog_dir), s.landing_dir, args.sf, s.seed,
                              date.fromisoformat(args.as_of), days=1, tables=s.legacy_table_list)
        gen_s = time.time() - t
        days = [(d.day, sum(d.rows.values()), len(d.files)) for d in deliveries]
        print(f"generated SF{args.sf} in {gen_s:.0f} s: {[n for _, n, _ in days]} rows", flush=True)
        if args.generate_only:
            return
    jars.fetch_jars(s)
    services.start_postgres(s)
    services.ensure_metastore(s)
    spark = get_spark("bench", s)
    if not args.incremental_only:
        for db in ("bronze", "silver", "quarantine", "audit"):
            for tb in spark.catalog.listTables(db):
                spark.sql(f"drop table if exists {db}.{tb.name}")
    if args.restore_before:
        restore_before(spark, args.restore_before)
    rows = [n for _, n, _ in days]
    timings, where = [], []
    with PeakRss() as mem:
        for i, (day, _, _) in enumerate(days):
            if args.incremental_only and i == 0:
                timings.append(float("nan"))
                where.append("")
                continue
            t, jobs, cpu = time.time(), spark_jobs_started(spark), mem.cpu_seconds()
            report = ingest.run(spark, s, days=[day], log=lambda m: print(m, flush=True) if args.verbose else None)
            timings.append(time.time() - t)
            # CPU seconds of this process, the Spark JVM and its Python workers: against wall x cores, how
            # CPU-bound the day was.
            cpu = mem.cpu_seconds() - cpu
            phases = ", ".join(f"{p} {v:.0f} s" for p, v in report.phase_seconds().items())
            mode = "/".join(sorted(set(report.projections.values())))
            run_level = ", ".join(f"{p} {v:.0f} s" for p, v in report.run_phases.items())
            where.append(f"{spark_jobs_started(spark) - jobs} Spark jobs, {mode} projections, CPU {cpu:.0f} s "
                         f"({cpu / timings[-1] / os.cpu_count():.0%} of {os.cpu_count()} cores); summed over files: {phases}; "
                         f"run-level commits: {run_level}")
            print(f"{day}: {timings[-1]:.0f} s, {where[-1]}", flush=True)
    tables = days[0][2]
    full = ("full: loaded by an earlier run (not timed here)" if args.incremental_only else
            f"full: {rows[0]} rows in {timings[0]:.0f} s ({rows[0] / timings[0]:.0f} rows/s)")
    line = (f"| {datetime.now():%Y-%m-%d} | {machine()} | legacy SF{args.sf}, {tables} tables | {full} | "
            f"incremental day: {rows[1]} rows in {timings[1]:.0f} s | peak RSS {mem.peak / 2**30:.2f} GiB | "
            f"generation {gen_s:.0f} s; full: {where[0] or '-'}; incremental: {where[1]} |\n")
    append_result(line)
    print(line)


def spark_jobs_started(spark) -> int:
    """Spark jobs the session has started so far (the scheduler's next job id; a private field)."""
    return int(spark.sparkContext._jsc.sc().dagScheduler().nextJobId())


def restore_before(spark, when: str) -> None:
    """RESTORE every layer table to its last version committed before ``when``; drop tables made after it."""
    for db in ("bronze", "silver", "quarantine", "audit"):
        for tb in spark.catalog.listTables(db):
            name = f"{db}.{tb.name}"
            hist = spark.sql(f"describe history {name}").where(f"timestamp < timestamp'{when}'")
            before = hist.agg({"version": "max"}).first()[0]
            current = spark.sql(f"describe history {name} limit 1").first()["version"]
            if before is None:
                spark.sql(f"drop table {name}")
                print(f"restore: dropped {name} (made after {when})", flush=True)
            elif current != before:
                spark.sql(f"restore table {name} to version as of {before}")
                print(f"restore: {name} back to version {before} (was {current})", flush=True)


if __name__ == "__main__":
    main()
