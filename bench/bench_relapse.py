"""Benchmark: the relapse-risk model at a scale factor: feature build, training, scoring.

    SMARTREHAB_VAR_DIR=var/bench-relapse SMARTREHAB_PG_PORT=5441 .venv/bin/python bench/bench_relapse.py --sf 1

Generates and loads the legacy tables the features and the outcome view read (skip with --no-load when
they are loaded at that scale), builds the outcome view (dbt, ``+int_release_outcomes``), then times
three stages in one process with default settings: the training feature frame alone, a full training
run (its own feature build, candidates, calibration, evaluation, MLflow), and a scoring run. Each
stage's wall time and peak memory (summed RSS of this process and its children, the Spark JVM
included); appends a row to bench/results.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from datetime import date, datetime

from bench_dbt import DBT_LEGACY_TABLES
from measure import PeakRss, append_result, machine

# What the relapse features read beyond the dbt sources (ml/relapse_risk/contract.py, ``source``).
FEATURE_TABLES = ["ZJ_XDS", "XL_16PF", "XL_FXPG", "ZJ_XWKH", "ZJ_YDKH", "ZJ_TSDJ", "ZJ_QQDH", "ZJ_JTCY"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sf", type=float, default=0.1)
    ap.add_argument("--as-of", default="2026-11-20")
    ap.add_argument("--no-load", action="store_true", help="silver and the outcome view are loaded at this scale")
    ap.add_argument("--generated", action="store_true", help="the landing folder holds this scale's extracts")
    args = ap.parse_args()
    tables = DBT_LEGACY_TABLES + FEATURE_TABLES
    os.environ["SMARTREHAB_LEGACY_TABLES"] = ",".join(tables)
    os.environ["SMARTREHAB_SCALE_FACTOR"] = str(args.sf)
    from ml.relapse_risk import features, score, train
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
    load = ""
    if not args.no_load:
        for db in ("bronze", "silver", "quarantine", "audit", "gold", "gold_staging"):
            if spark.catalog.databaseExists(db):
                for tb in spark.catalog.listTables(db):
                    spark.sql(f"drop table if exists {db}.{tb.name}")
        t = time.time()
        if not args.generated:
            shutil.rmtree(s.landing_dir, ignore_errors=True)
            generate(load_catalog(s.catalog_dir), s.landing_dir, args.sf, s.seed, date.fromisoformat(args.as_of),
                     tables=tables)
        t_gen = time.time() - t
        t = time.time()
        ingest.run(spark, s, log=lambda _m: None)
        t_load = time.time() - t
        t = time.time()
        pipeline.dbt_build(s, select="+int_release_outcomes", log=lambda _m: None)
        gen = "generated before" if args.generated else f"generation {t_gen:.0f} s"
        load = (f"; set-up (not part of the figures): {gen}, legacy load {t_load:.0f} s, "
                f"dbt +int_release_outcomes {time.time() - t:.0f} s")
    stages = {}
    with PeakRss() as mem:
        t = time.time()
        n_occasions = features.build(spark, features.training_occasions(spark)).toPandas().shape[0]
        stages["features"] = (time.time() - t, mem.peak)
    with PeakRss() as mem:
        t = time.time()
        trained = train.train(spark, s, log=lambda _m: None)
        stages["train"] = (time.time() - t, mem.peak)
    with PeakRss() as mem:
        t = time.time()
        scored = score.score(spark, s, log=lambda _m: None)
        stages["score"] = (time.time() - t, mem.peak)
    memory_from = ("SMARTREHAB_SPARK_DRIVER_MEMORY" if os.environ.get("SMARTREHAB_SPARK_DRIVER_MEMORY")
                   else "default: auto")
    figures = "; ".join(f"{k} {w:.0f} s, peak RSS {p / 2**30:.2f} GiB" for k, (w, p) in stages.items())
    line = (f"| {datetime.now():%Y-%m-%d} | {machine()} | `bench/bench_relapse.py --sf {args.sf}`: relapse-risk "
            f"model, {len(tables)} legacy tables, driver memory {s.spark_driver_memory} ({memory_from}) | "
            f"training frame: {n_occasions} occasions ({trained.n_train} train rows, {trained.n_test} holdout "
            f"releases) | scoring: {scored['scored']} occasions | {figures} | {trained.kind} version "
            f"{trained.model_version} ({trained.alias}), holdout ROC-AUC {trained.auc:.3f}, Brier {trained.brier:.3f}"
            f"{load} |\n")
    append_result(line)
    print(line)
    print(report_tables(s, trained.run_id))


def report_tables(s, run_id: str) -> str:
    """The run's comparison, calibration and flagged fairness rows as markdown (for the model card)."""
    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(s.tracking_uri)
    out = []
    for name in ("comparison", "calibration", "fairness"):
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=f"report/{name}.csv")
        frame = pd.read_csv(path)
        if name == "fairness":
            frame = frame[frame["flagged"] | (frame["note"].fillna("") != "")]
        out.append(f"{name} (run {run_id}):\n" + frame.round(3).to_markdown(index=False))
    return "\n\n".join(out)


if __name__ == "__main__":
    main()
