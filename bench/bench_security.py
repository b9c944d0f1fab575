"""Benchmark: the security-situation model: its backtest on a long feed history, and feature build + scoring.

    SMARTREHAB_VAR_DIR=var/bench-security SMARTREHAB_PG_PORT=5442 .venv/bin/python bench/bench_security.py \
        --sf 0.1 --feed-days 90 --train
    SMARTREHAB_VAR_DIR=var/bench-security SMARTREHAB_PG_PORT=5442 .venv/bin/python bench/bench_security.py \
        --sf 1 --feed-days 7

Set-up (timed, not part of the figures): the legacy tables the features read (AQ_SJDJ, ZJ_FQFQ, ZJ_RSDJ,
ZJ_RYJBXX) are generated at ``--sf`` as of ``--as-of`` and loaded; the feeds of the last ``--feed-days``
days before it (all nine, default flaws, the people and units of that world, 6-hour deliveries) are simulated
and ingested as ``feeds_ingest`` does (bronze stream, silver, hourly aggregates).

Figures, each with wall time and peak memory (summed RSS of this process and its children, the Spark JVM
included): ``--train`` trains (purged time split, backtest against yesterday's alarm count, MLflow) and
prints the backtest for the model card; then the unit-day feature frame alone, and a scoring run with the
champion (scoring needs one: train in the same var dir first, at any scale). Appends a row to
bench/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from datetime import date, datetime, timedelta

from measure import PeakRss, append_result, machine

LEGACY_TABLES = ["ZJ_RYJBXX", "ZJ_RSDJ", "ZJ_FQFQ", "AQ_SJDJ"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sf", type=float, default=0.1)
    ap.add_argument("--as-of", default="2026-11-20")
    ap.add_argument("--feed-days", type=int, default=7)
    ap.add_argument("--train", action="store_true", help="train and backtest before scoring")
    ap.add_argument("--reuse-lake", action="store_true",
                    help="skip the set-up: keep the lake and feeds of the previous run in the same var dir")
    args = ap.parse_args()
    os.environ["SMARTREHAB_LEGACY_TABLES"] = ",".join(LEGACY_TABLES)
    os.environ["SMARTREHAB_SCALE_FACTOR"] = str(args.sf)
    from ml.security_situation import features, score, train
    from smartrehab import services
    from smartrehab.catalog import load_catalog
    from smartrehab.feeds.contracts import CST
    from smartrehab.feeds.persons import legacy_persons
    from smartrehab.feeds.simulator import simulate
    from smartrehab.generate.legacy import generate
    from smartrehab.settings import get_settings
    from smartrehab.spark import get_spark
    from spark_jobs.feeds import hourly, silver, stream
    from spark_jobs.legacy import ingest

    s = get_settings()
    as_of = date.fromisoformat(args.as_of)
    services.start_postgres(s)
    services.ensure_metastore(s)
    spark = get_spark("bench", s)
    setup = {}
    if args.reuse_lake:
        manifests = sorted((s.landing_dir / "feeds" / "_manifests").glob("manifest_*.json"))
        if not manifests:
            raise SystemExit(f"--reuse-lake: no feed manifest under {s.landing_dir}; run once without it")
        manifest = json.loads(manifests[-1].read_text(encoding="utf-8"))
    else:
        for db in ("bronze", "silver", "quarantine", "audit"):
            if spark.catalog.databaseExists(db):
                for tb in spark.catalog.listTables(db):
                    spark.sql(f"drop table if exists {db}.{tb.name}")
        shutil.rmtree(s.landing_dir, ignore_errors=True)
        shutil.rmtree(s.var_dir / "checkpoints", ignore_errors=True)
        t = time.time()
        generate(load_catalog(s.catalog_dir), s.landing_dir, args.sf, s.seed, as_of, tables=LEGACY_TABLES)
        ingest.run(spark, s, log=lambda _m: None)
        setup["legacy"] = time.time() - t
        t = time.time()
        end = datetime.combine(as_of + timedelta(days=1), datetime.min.time(), tzinfo=CST)
        manifest = simulate(end - timedelta(days=args.feed_days), end, settings=s,
                            persons=legacy_persons(s, as_of, 0), batch_minutes=360)
        setup["simulate"] = time.time() - t
        t = time.time()
        stream.run(spark, s, available_now=True)
        silver.run(spark, s)
        hourly.run(spark, s)
        setup["ingest"] = time.time() - t
    lines = sum(manifest["counts"]["lines"].values())

    stages, trained = {}, None
    if args.train:
        with PeakRss() as mem:
            t = time.time()
            trained = train.train(spark, s, log=print)
            stages["train"] = (time.time() - t, mem.peak)
    with PeakRss() as mem:
        t = time.time()
        frame = features.to_pandas(features.build(spark), features.incidents_known_until(spark))
        stages["features"] = (time.time() - t, mem.peak)
    with PeakRss() as mem:
        t = time.time()
        scored = score.score(spark, s, log=lambda _m: None)
        stages["score"] = (time.time() - t, mem.peak)
    figures = "; ".join(f"{k} {w:.0f} s, peak RSS {p / 2**30:.2f} GiB" for k, (w, p) in stages.items())
    units = frame[["centre", "unit"]].drop_duplicates().shape[0]
    backtest = ""
    if trained is not None:
        b = trained.backtest
        backtest = (f"; {trained.kind} version {trained.model_version} ({trained.alias}): backtest "
                    f"{b['first_day']} .. {b['last_day']}, {b['n']} unit-days, incident rate {b['incident_rate']:.3f}, "
                    f"ROC-AUC {trained.roc_auc:.3f} vs yesterday's alarms {trained.baseline_auc:.3f}; 红/橙 "
                    f"{b['red_orange_flagged']} flagged, precision {b['red_orange_precision']:.3f} recall "
                    f"{b['red_orange_recall']:.3f}; baseline at the same budget precision "
                    f"{b['baseline_precision']:.3f} recall {b['baseline_recall']:.3f}")
    line = (f"| {datetime.now():%Y-%m-%d} | {machine()} | `bench/bench_security.py --sf {args.sf} --feed-days "
            f"{args.feed_days}{' --train' if args.train else ''}{' --reuse-lake' if args.reuse_lake else ''}`: security situation, driver memory "
            f"{s.spark_driver_memory} | {lines} feed lines, {manifest['counts']['incidents']} incidents in the "
            f"window; {len(frame)} unit-days of {units} units | scored {scored['scored']} unit-days, levels "
            f"{json.dumps(scored['levels'], ensure_ascii=False)} | {figures}{backtest}; set-up (not part of the "
            f"figures): " + (", ".join(f"{k} {v:.0f} s" for k, v in setup.items()) or "reused") + " |\n")
    append_result(line)
    print(line)
    if trained is not None:
        print(report(s, trained.run_id))


def report(s, run_id: str) -> str:
    """The run's comparison and per-level tables as markdown (for the model card)."""
    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(s.tracking_uri)
    out = []
    for name in ("comparison", "levels"):
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=f"report/{name}.csv")
        out.append(f"{name} (run {run_id}):\n" + pd.read_csv(path).round(3).to_markdown(index=False))
    return "\n\n".join(out)


if __name__ == "__main__":
    main()
