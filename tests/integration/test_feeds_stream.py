"""Feeds stream end to end on simulated landing files: exactly once across a kill -9, every flaw caught.

The module simulates two hours of three feeds with raised flaw rates, then:

1. runs the stream in a separate process (availableNow, one file per micro-batch), kills its whole process
   group with SIGKILL after a micro-batch committed, deletes the last commit marker (so the restart replays a
   batch whose MERGE already went through), and restarts it here with availableNow;
2. checks bronze / quarantine against the files and the simulator's manifest;
3. adds one event older than the watermark (still inserted), then re-runs with no new files.

Only one Spark process runs at a time: the session fixture is created after the killed process is gone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta

import pytest
from pyspark.sql import functions as F

from smartrehab.feeds.contracts import CST
from smartrehab.feeds.simulator import FlawConfig, simulate
from spark_jobs.feeds import stream

pytestmark = pytest.mark.spark

FEEDS = ["access", "video_analytics", "vitals"]
START = datetime(2026, 11, 20, 6, 0, tzinfo=CST)
END = START + timedelta(hours=2)
FLAWS = FlawConfig(duplicate=0.03, late=0.03, out_of_order=0.02, invalid_json=0.01, not_an_object=0.004,
                   missing_event_id=0.005, unknown_feed=0.004, wrong_version=0.005, schema_violation=0.01,
                   future_timestamp=0.005, oversize_messages=1, oversize_bytes=1_100_000,
                   late_min_s=600, late_max_s=5400)
RESULTS: dict = {}

CRASHING_RUN = """
from smartrehab.settings import get_settings
from smartrehab.spark import get_spark
from spark_jobs.feeds import stream
s = get_settings()
spark = get_spark("feeds-crash-test", s)
for t in (stream.BRONZE, stream.QUARANTINE):
    spark.sql(f"drop table if exists {t}")
print(stream.run(spark, s, feeds=FEEDS_LIST, max_files_per_trigger=1), flush=True)
""".replace("FEEDS_LIST", repr(FEEDS))


@pytest.fixture(scope="module")
def landed(metastore):
    settings = metastore
    shutil.rmtree(settings.landing_dir / "feeds", ignore_errors=True)
    shutil.rmtree(stream.checkpoint_dir(settings, FEEDS), ignore_errors=True)
    manifest = simulate(START, END, settings=settings, flaws=FLAWS, feeds=FEEDS)
    lines = {}   # relative path -> list of raw line bytes
    for f in manifest["files"]:
        data = (settings.landing_dir / f["path"]).read_bytes()
        lines[f["path"]] = data.split(b"\n")[:-1]
    return manifest, lines


def _expected(manifest, lines):
    bad = {(m["path"], m["line"]) for m in manifest["malformed"]}
    valid_ids = set()
    for path, rows in lines.items():
        for n, raw in enumerate(rows, 1):
            if (path, n) not in bad:
                valid_ids.add(json.loads(raw)["event_id"])
    return valid_ids


def _commits(ckpt) -> list[int]:
    d = ckpt / "commits"
    return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.exists() else []


def test_exactly_once_across_kill(landed, metastore):
    settings = metastore
    manifest, _ = landed
    assert len(manifest["files"]) >= 20 and manifest["malformed"] and manifest["late"] and manifest["duplicates"]
    ckpt = stream.checkpoint_dir(settings, FEEDS)
    log_path = settings.var_dir / "feeds_crash_test.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-c", CRASHING_RUN], cwd=settings.repo_root, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 240
            while len(_commits(ckpt)) < 2 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.5)
            still_running = proc.poll() is None
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)   # the Python driver and its JVM: a hard crash
            proc.wait(30)
    committed = _commits(ckpt)                            # listed after the kill: a commit may have raced it
    assert still_running, log_path.read_text(errors="replace")[-3000:]
    assert len(committed) >= 2, log_path.read_text(errors="replace")[-3000:]
    # Forget the last commit: the restart replays a micro-batch whose MERGE already committed.
    # (with its Hadoop checksum file, as a crash before the commit was written would leave it).
    for name in (str(committed[-1]), f".{committed[-1]}.crc"):
        (ckpt / "commits" / name).unlink(missing_ok=True)
    RESULTS["killed_after_batches"] = len(committed)


def test_restart_lands_every_valid_event_once(landed, spark, settings):
    manifest, lines = landed
    before = spark.table(stream.BRONZE).count()
    result = stream.run(spark, settings, feeds=FEEDS)
    RESULTS["restart"] = result
    bronze = spark.table(stream.BRONZE)
    expected = _expected(manifest, lines)
    got = {r["event_id"] for r in bronze.select("event_id").collect()}
    # No loss, no duplicates, nothing invented; the manifest agrees with the files.
    assert bronze.count() == len(got) == len(expected) == sum(manifest["counts"]["valid_unique"].values())
    assert got == expected
    assert bronze.groupBy("event_id").count().where("count > 1").count() == 0
    assert 0 < before < len(expected)               # the killed run had loaded part of it
    assert result["valid"] > result["inserted"]     # the replayed batch and re-sent events inserted nothing new
    assert set(manifest["duplicates"]) <= got
    print(f"\nrestart: {result}  killed after {RESULTS['killed_after_batches']} committed batches")


def test_malformed_lines_quarantined_with_manifest_reason(landed, spark):
    manifest, lines = landed
    q = {(r["source_file"].split("/feeds/", 1)[1], r["raw_sha256"]): r
         for r in spark.table(stream.QUARANTINE).collect()}
    assert len(q) == len(manifest["malformed"])
    kinds = set()
    for m in manifest["malformed"]:
        raw = lines[m["path"]][m["line"] - 1]
        row = q[(m["path"].split("feeds/", 1)[1], hashlib.sha256(raw).hexdigest())]
        assert row["reason"] == m["reason"], m
        assert row["feed"] == m["feed"]
        assert len(row["raw_line"]) <= stream.RAW_LINE_MAX
        kinds.add(m["kind"])
    assert {"oversize", "invalid_json", "schema_violation", "future_timestamp", "wrong_version"} <= kinds


def test_late_events_present_and_payload_upgraded(landed, spark):
    manifest, _ = landed
    bronze = spark.table(stream.BRONZE)
    late = {m["event_id"] for m in manifest["late"]}
    assert bronze.where(F.col("event_id").isin(list(late))).count() == len(late)
    v1 = bronze.where("feed = 'vitals' and contract_version = '1.0'").select("payload").limit(20).collect()
    assert v1, "expected some vitals 1.0 events"
    for r in v1:
        p = json.loads(r["payload"])
        assert "body_temp_c" in p and "temperature" not in p and "spo2_pct" in p
    row = bronze.where("feed = 'access'").first()
    assert row["event_time"] is not None and row["centre"] and row["source_file"].endswith(".jsonl")


def test_event_later_than_watermark_is_still_inserted(landed, spark, settings):
    manifest, lines = landed
    bad = {(m["path"], m["line"]) for m in manifest["malformed"]}
    path, rows = next((p, r) for p, r in lines.items() if "/vitals/" in p)
    template = json.loads(next(raw for n, raw in enumerate(rows, 1) if (path, n) not in bad))
    # Three hours older than the newest event in bronze: behind the 2-hour watermark.
    event = {**template, "event_id": str(uuid.UUID(int=20261120)),
             "event_time": (START - timedelta(hours=1)).isoformat()}
    name = f"vitals_{END.strftime('%Y%m%d%H%M')}_0099.jsonl"
    folder = settings.landing_dir / "feeds" / "vitals" / END.strftime("%Y%m%d")
    (folder / f".{name}.tmp").write_text(json.dumps(event) + "\n")
    (folder / f".{name}.tmp").rename(folder / name)
    result = stream.run(spark, settings, feeds=FEEDS)
    assert result["inserted"] == 1 and result["late_beyond_watermark"] == 1, result
    assert spark.table(stream.BRONZE).where(F.col("event_id") == event["event_id"]).count() == 1


def test_rerun_without_new_files_changes_nothing(landed, spark, settings):
    def version(t):
        return spark.sql(f"describe history {t}").agg(F.max("version")).first()[0]

    before = (version(stream.BRONZE), version(stream.QUARANTINE), spark.table(stream.BRONZE).count())
    result = stream.run(spark, settings, feeds=FEEDS)
    assert result["batches"] == 0 and result["inserted"] == 0
    assert (version(stream.BRONZE), version(stream.QUARANTINE), spark.table(stream.BRONZE).count()) == before


def test_continuous_mode_stops_between_micro_batches(landed, spark, settings):
    """Continuous mode stopped by its timeout while files are still waiting: the micro-batch that was running
    finishes and commits, nothing is inserted twice, and the stop leaves at most one planned-but-not-run batch
    (its offsets written, no commit), which the next start replays and commits without inserting anything."""
    manifest, lines = landed
    bad = {(m["path"], m["line"]) for m in manifest["malformed"]}
    valid = [raw for path, rows in lines.items() if "/access/" in path
             for n, raw in enumerate(rows, 1) if (path, n) not in bad]
    # 60 re-deliveries of access events bronze already holds, one file per 2-second micro-batch.
    folder = settings.landing_dir / "feeds" / "access" / "20261121"
    folder.mkdir(parents=True)
    for i in range(60):
        (folder / f"access_202611210600_{9000 + i}.jsonl").write_bytes(b"\n".join(valid[i::60]) + b"\n")
    ckpt = stream.checkpoint_dir(settings, ["access"])
    shutil.rmtree(ckpt, ignore_errors=True)

    def offsets():
        return sorted(int(p.name) for p in (ckpt / "offsets").iterdir() if p.name.isdigit())

    before = spark.table(stream.BRONZE).count()
    try:
        result = stream.run(spark, settings, available_now=False, feeds=["access"], max_files_per_trigger=1,
                            processing_time="2 seconds", timeout_s=7)
        assert 0 < result["batches"] < 60, result        # stopped by the timeout, not for want of files
        committed = _commits(ckpt)
        # Every batch that ran committed; at most the next one was planned when the stop came.
        assert committed == list(range(result["batches"])), (committed, result)
        assert offsets() in (committed, [*committed, len(committed)]), (offsets(), committed)
        assert result["inserted"] == 0 and spark.table(stream.BRONZE).count() == before
        # The next start replays a planned batch (if any) first, then takes the remaining files.
        rest = stream.run(spark, settings, feeds=["access"], max_files_per_trigger=20)
        assert offsets() == _commits(ckpt) and len(offsets()) == len(committed) + rest["batches"], (offsets(), rest)
        # The checkpoint was new: the two runs read every access file once, the two hours landed first included.
        read = sum(len(p.read_bytes().splitlines()) for p in (settings.landing_dir / "feeds" / "access").glob("*/*.jsonl"))
        assert rest["lines"] + result["lines"] == read, (rest, result, read)
        assert rest["inserted"] == 0 and spark.table(stream.BRONZE).count() == before
    finally:
        shutil.rmtree(folder)
        shutil.rmtree(ckpt, ignore_errors=True)
