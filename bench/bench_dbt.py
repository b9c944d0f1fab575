"""Benchmark: `dbt build` of every gold model (with their data and unit tests) at a scale factor.

    SMARTREHAB_VAR_DIR=var/bench SMARTREHAB_PG_PORT=5440 SMARTREHAB_LEGACY_TABLES=<tables the models read> \\
        .venv/bin/python bench/bench_dbt.py --sf 1

Generates and loads the legacy tables the dbt sources read (skip with --no-load when silver is already
loaded at that scale), then times `dbt build` alone: wall time and peak memory (summed RSS of this process
and its children, the Spark JVM included, sampled every 0.5 s). Appends a row to bench/results.md.
"""

from __future__ import annotations

import argparse
import shutil
import time
from datetime import date, datetime

from measure import PeakRss, append_result, machine

# The legacy tables behind the dbt sources (dbt/models/staging/_silver__sources.yml).
DBT_LEGACY_TABLES = ["ZJ_RYJBXX", "ZJ_RSDJ", "ZJ_FQFQ", "ZD_PGJL", "ZD_SLTD", "ZD_SXKF", "ZD_XWBX", "ZD_SHHJ",
                     "YL_CRBS", "YL_WZJY", "XL_SCL90", "XL_WJGY", "YD_TZCS", "YD_XLJL", "JY_XSHZ", "JY_KSCJ",
                     "AQ_SJDJ", "SY_HFJL"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sf", type=float, default=0.1)
    ap.add_argument("--as-of", default="2026-11-20")
    ap.add_argument("--no-load", action="store_true", help="silver is already loaded at this scale")
    args = ap.parse_args()
    from smartrehab import pipeline, services
    from smartrehab.catalog import load_catalog
    from smartrehab.generate.legacy import generate
    from smartrehab.settings import get_settings
    from smartrehab.spark import get_spark
    from spark_jobs.legacy import ingest

    s = get_settings()
    services.start_postgres(s)
    services.ensure_metastore(s)
    spark = get_spark("bench", s)
    if not args.no_load:
        shutil.rmtree(s.landing_dir, ignore_errors=True)
        for db in ("bronze", "silver", "quarantine", "audit", "gold", "gold_staging"):
            if spark.catalog.databaseExists(db):
                for tb in spark.catalog.listTables(db):
                    spark.sql(f"drop table if exists {db}.{tb.name}")
        generate(load_catalog(s.catalog_dir), s.landing_dir, args.sf, s.seed, date.fromisoformat(args.as_of),
                 tables=DBT_LEGACY_TABLES)
        ingest.run(spark, s, log=lambda _m: None)
    silver_rows = sum(spark.table(f"silver.{t}").count() for t in ("zone_placement", "assessment", "training_session"))
    with PeakRss() as mem:
        t = time.time()
        res = pipeline.dbt_build(s, log=lambda _m: None)
        wall = time.time() - t
    line = (f"| {datetime.now():%Y-%m-%d} | {machine()} | dbt build SF{args.sf}, {res['nodes']} nodes "
            f"(zone_placement + assessment + training_session: {silver_rows} silver rows) | "
            f"wall {wall:.0f} s | peak RSS {mem.peak / 2**30:.2f} GiB |\n")
    append_result(line)
    print(line)


if __name__ == "__main__":
    main()
