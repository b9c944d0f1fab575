"""Live feeds benchmark: events/s into bronze, a plain delta-rs writer beside it, end-to-end latency into silver.

    SMARTREHAB_VAR_DIR=... flock /tmp/smartrehab-spark.lock .venv/bin/python bench/bench_feeds.py --hours 12

1. **Throughput**: the simulator writes a backlog of ``--hours`` of all nine feeds at SF1 (3 centres, 2,700
   beds; no flaws, so that every line is an event) into a landing zone of the benchmark's own; the bronze
   stream ingests it with one availableNow run, ``--max-files`` files per micro-batch. Reported: events/s over
   all micro-batches (``foreachBatch`` time), the sustained rate after the first micro-batch (which pays for
   JIT compilation and starting the Python workers), and the start-up (query start, file listing, first
   planning) separately. The silver step then conforms the same backlog (events/s too).
2. **Plain writer**: the same files, each read with ``pyarrow.json.read_json`` and appended per feed with
   ``deltalake.write_deltalake`` (no contract checks, no de-duplication): events/s and the ratio.
3. **Latency** (``--latency-minutes``): bronze and silver streams run continuously (processing-time
   triggers) while a replayer writes the simulator's SF1 events in real time (event times shifted to now, one
   file per feed every ``--deliver-s`` seconds). Latency of an event = when its silver micro-batch committed
   minus its event time; p50 / p95 / max reported.

Appends one row to ``bench/results.md`` (machine and date from ``bench/measure.py``) with the peak RSS of
this process tree.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import TreeSampler, append_result, machine  # noqa: E402

from smartrehab.feeds.contracts import CST  # noqa: E402
from smartrehab.feeds.simulator import FlawConfig, simulate  # noqa: E402
from smartrehab.settings import get_settings  # noqa: E402

START = datetime(2026, 11, 27, 0, 0, tzinfo=CST)
FEED_TABLES = ("bronze.feed_events", "quarantine.feed_events", "silver.feed_events", "silver.dim_location",
               "silver.feed_devices", "silver.feed_patrol_plan")


def _sampler() -> tuple[TreeSampler, threading.Event]:
    import os

    sampler, stop = TreeSampler(os.getpid()), threading.Event()

    def loop():
        while not stop.is_set():
            sampler.sample()
            stop.wait(1.0)

    threading.Thread(target=loop, daemon=True).start()
    return sampler, stop


def _reset(spark, bs) -> None:
    for t in FEED_TABLES:
        spark.sql(f"drop table if exists {t}")
    shutil.rmtree(bs.var_dir / "checkpoints", ignore_errors=True)


def throughput(spark, bs, hours: float, max_files: int) -> dict:
    from spark_jobs.feeds import silver, stream

    shutil.rmtree(bs.landing_dir, ignore_errors=True)
    t = time.monotonic()
    manifest = simulate(START, START + timedelta(hours=hours), settings=bs, flaws=FlawConfig.none())
    gen_s = time.monotonic() - t
    lines = sum(manifest["counts"]["lines"].values())
    _reset(spark, bs)
    res = stream.run(spark, bs, available_now=True, max_files_per_trigger=max_files)
    assert res["inserted"] == lines, (res, lines)
    sil = silver.run(spark, bs, person_table="silver.person")
    warm = res["batch_log"][1:]     # after the first micro-batch: JIT, Python workers and caches are warm
    warm_ev_s = round(sum(n for n, _ in warm) / sum(t for _, t in warm)) if warm else None
    return {"events": lines, "files": manifest["counts"]["files"], "generate_s": round(gen_s, 1),
            "bronze_s": res["seconds"], "bronze_batch_s": res["batch_seconds"], "bronze_batches": res["batches"],
            "bronze_startup_s": round(res["seconds"] - res["batch_seconds"], 1),
            "bronze_ev_s": round(lines / res["batch_seconds"]), "bronze_ev_s_incl_startup": round(lines / res["seconds"]),
            "bronze_ev_s_warm": warm_ev_s, "bronze_batch_log": res["batch_log"],
            "silver_s": sil["seconds"], "silver_ev_s": round(sil["rows"] / sil["seconds"]) if sil["seconds"] else None}


def arrow_schema(feed: str, dates_as: str = "date"):
    """The feed's event schema (all versions' payload fields) as pyarrow types; ``dates_as="string"`` for
    read_json, which cannot parse a date field itself (the table is cast to the real schema after)."""
    import pyarrow as pa

    from smartrehab.feeds.contracts import spark_fields

    types = {"string": pa.string(), "int": pa.int32(), "bigint": pa.int64(), "double": pa.float64(),
             "boolean": pa.bool_(), "timestamp": pa.timestamp("us", tz="UTC"),
             "date": pa.date32() if dates_as == "date" else pa.string()}
    top: dict[str, object] = {}
    nested: dict[str, list] = {}
    for name, t in spark_fields(feed).items():
        if "." in name:
            parent, child = name.split(".", 1)
            nested.setdefault(parent, []).append(pa.field(child, types[t]))
            top.setdefault(parent, None)
        else:
            top[name] = types[t]
    return pa.schema([pa.field(n, t if t is not None else pa.struct(nested[n])) for n, t in top.items()])


def plain_writer(bs, files: list[Path]) -> dict:
    import pyarrow.json as pj
    from deltalake import write_deltalake

    out = bs.var_dir / "bench_deltars"
    shutil.rmtree(out, ignore_errors=True)
    by_feed: dict[str, list[Path]] = {}
    for f in files:
        by_feed.setdefault(f.parent.parent.name, []).append(f)
    t = time.monotonic()
    n = 0
    for feed, paths in by_feed.items():
        opts = pj.ParseOptions(explicit_schema=arrow_schema(feed, dates_as="string"))
        schema = arrow_schema(feed)
        for p in paths:
            table = pj.read_json(p, parse_options=opts).cast(schema)
            n += table.num_rows
            write_deltalake(str(out / feed), table, mode="append")
    s = time.monotonic() - t
    return {"events": n, "seconds": round(s, 2), "ev_s": round(n / s)}


def _replayer(bs, events: list[tuple[float, str, dict]], offset: float, deliver_s: float, stop: threading.Event,
              written: list[int]) -> None:
    """Write the events whose shifted event time has come, one file per feed every ``deliver_s`` seconds."""
    i, seq = 0, 0
    while not stop.is_set() and i < len(events):
        now = time.time()
        batch: dict[str, list[str]] = {}
        while i < len(events) and events[i][0] + offset <= now:
            ts, feed, e = events[i]
            shifted = datetime.fromtimestamp(ts + offset, CST).isoformat(timespec="seconds")
            batch.setdefault(feed, []).append(json.dumps({**e, "event_time": shifted}, separators=(",", ":")))
            i += 1
        stamp = datetime.fromtimestamp(now, CST)
        for feed, lines in batch.items():
            folder = bs.landing_dir / "feeds" / feed / stamp.strftime("%Y%m%d")
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{feed}_{stamp.strftime('%Y%m%d%H%M')}_{seq:04d}.jsonl"
            seq += 1
            tmp = folder / f".{name}.tmp"
            tmp.write_text("\n".join(lines) + "\n")
            tmp.rename(folder / name)
            written[0] += len(lines)
        stop.wait(deliver_s)


def latency(spark, bs, minutes: float, deliver_s: float, trigger: str) -> dict:
    from pyspark.sql import functions as F

    from spark_jobs.feeds import silver, stream

    # The simulator's events for the window, in event-time order, replayed from "now".
    stage = replace(bs, landing_dir=bs.var_dir / "latency_stage")
    shutil.rmtree(stage.landing_dir, ignore_errors=True)
    win0 = START + timedelta(hours=8)           # a busy morning: breakfast, transit, morning block
    manifest = simulate(win0, win0 + timedelta(minutes=int(minutes) + 1), settings=stage, flaws=FlawConfig.none(),
                        batch_minutes=1)
    events = []
    for f in manifest["files"]:
        for line in (stage.landing_dir / f["path"]).read_text().splitlines():
            e = json.loads(line)
            events.append((datetime.fromisoformat(e["event_time"]).timestamp(), e["feed"], e))
    events.sort(key=lambda x: x[0])
    live = replace(bs, landing_dir=bs.var_dir / "latency_landing")
    shutil.rmtree(live.landing_dir, ignore_errors=True)
    (live.landing_dir / "feeds").mkdir(parents=True)
    _reset(spark, live)
    stream.ensure_tables(spark)
    totals = silver.new_totals()
    sq = silver.start(spark, live, totals, available_now=False, processing_time=trigger, person_table="silver.person")
    stop, written = threading.Event(), [0]
    offset = time.time() - win0.timestamp()
    rep = threading.Thread(target=_replayer, args=(live, events, offset, deliver_s, stop, written), daemon=True)
    rep.start()
    t_end = minutes * 60
    try:
        bronze = stream.run(spark, live, available_now=False, processing_time=trigger, timeout_s=t_end)
        stop.set()
        rep.join()
        # Let silver catch up with the last bronze batch.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and spark.table(silver.SILVER).count() < bronze["inserted"]:
            time.sleep(2)
    finally:
        stop.set()
        stream.stop_between_batches(sq)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    by_us = {(stamp - epoch) // timedelta(microseconds=1): at for stamp, at in totals["commits"]}
    rows = (spark.table(silver.SILVER).select(F.unix_micros("event_time").alias("et"),
                                              F.unix_micros("conformed_at").alias("ca")).collect())
    lat = sorted(by_us[r["ca"]] - r["et"] / 1e6 for r in rows if r["ca"] in by_us)
    if not lat:
        return {"events": 0}
    pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 1)  # noqa: E731
    return {"events_written": written[0], "events_in_silver": len(rows), "measured": len(lat),
            "rate_ev_s": round(written[0] / t_end, 1), "trigger": trigger, "deliver_s": deliver_s,
            "p50_s": pick(0.50), "p95_s": pick(0.95), "max_s": round(lat[-1], 1),
            "bronze_batches": bronze["batches"], "silver_batches": len(totals["commits"])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=12.0, help="hours of SF1 feeds in the backlog (default 12)")
    ap.add_argument("--max-files", type=int, default=1000, help="maxFilesPerTrigger of the bronze stream")
    ap.add_argument("--latency-minutes", type=float, default=3.0)
    ap.add_argument("--deliver-s", type=float, default=5.0, help="replayer: seconds between deliveries")
    ap.add_argument("--trigger", default="5 seconds", help="processing-time trigger of the streams")
    ap.add_argument("--skip", default="", help="comma-separated: throughput,plain,latency")
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    sampler, stop = _sampler()
    s = get_settings()
    root = s.var_dir / "bench_feeds"
    bs = replace(s, scale_factor=1.0, landing_dir=root / "landing", var_dir=root)
    t = time.monotonic()
    from smartrehab import jars, services
    from smartrehab.spark import get_spark

    jars.fetch_jars(s)
    services.start_postgres(s)
    services.ensure_metastore(s)
    spark = get_spark("bench-feeds", s)
    out: dict = {"spark_session_s": round(time.monotonic() - t, 1)}
    if "throughput" not in skip:
        out["throughput"] = throughput(spark, bs, args.hours, args.max_files)
        print(json.dumps(out, indent=1), flush=True)
    if "plain" not in skip:
        files = sorted((bs.landing_dir / "feeds").glob("*/*/*.jsonl"))
        out["plain"] = plain_writer(bs, files)
        if "throughput" in out:
            out["plain"]["spark_bronze_to_plain_ratio"] = round(out["throughput"]["bronze_ev_s"] / out["plain"]["ev_s"], 3)
        print(json.dumps(out, indent=1), flush=True)
    if "latency" not in skip:
        out["latency"] = latency(spark, bs, args.latency_minutes, args.deliver_s, args.trigger)
        if not out["latency"].get("measured"):
            raise SystemExit(f"latency: no event could be timed, nothing recorded: {out['latency']}")
    stop.set()
    print(json.dumps(out, indent=1), flush=True)
    tp, pl, la = out.get("throughput", {}), out.get("plain", {}), out.get("latency", {})
    line = (f"| {datetime.now():%Y-%m-%d} | {machine()} | `bench/bench_feeds.py --hours {args.hours} "
            f"--max-files {args.max_files} --trigger '{args.trigger}'` "
            f"| bronze {tp.get('bronze_ev_s', '-')} ev/s over {tp.get('events', '-')} SF1 events, "
            f"{tp.get('bronze_ev_s_warm', '-')} ev/s after the first micro-batch "
            f"({tp.get('bronze_batches', '-')} batches; start-up {tp.get('bronze_startup_s', '-')} s; "
            f"{tp.get('bronze_ev_s_incl_startup', '-')} ev/s with it); silver {tp.get('silver_ev_s', '-')} ev/s "
            f"| streaming e2e latency (event time to queryable in silver) p50 {la.get('p50_s', '-')} s, "
            f"p95 {la.get('p95_s', '-')} s, max {la.get('max_s', '-')} s over {la.get('measured', '-')} events "
            f"at {la.get('rate_ev_s', '-')} ev/s "
            f"| peak RSS {sampler.peak / 2**30:.2f} GiB | plain pyarrow+delta-rs writer {pl.get('ev_s', '-')} ev/s; "
            f"Spark bronze / plain = {pl.get('spark_bronze_to_plain_ratio', '-')} |\n")
    append_result(line)
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
