"""Live feeds: landing-zone JSONL files -> ``bronze.feed_events`` / ``quarantine.feed_events``, exactly once.

One Structured Streaming query reads ``<landing>/feeds/<feed>/<YYYYMMDD>/*.jsonl`` as text for the requested
feeds (one checkpoint per feed set under ``<var_dir>/checkpoints/feeds/``). Every micro-batch, in
``foreachBatch``:

1. each line is checked by :func:`smartrehab.feeds.contracts.ContractRegistry.check` (the contracts' own
   compiled validator, in a vectorised pandas UDF): oversize (> 1 MiB, measured in Spark on the raw bytes,
   the line is never shipped to Python), invalid_json (incl. non-UTF-8 bytes: the raw bytes are checked),
   not_an_object, missing_event_id, unknown_feed, unknown_contract_version, schema_violation:<field>,
   future_timestamp. ``received_at`` for the future check is the delivery time in the file name (the
   contract's file naming), never later than the processing time;
2. valid events are rewritten to the latest contract version's payload shape (``upgrade``), de-duplicated
   by ``event_id`` inside the batch and MERGEd insert-if-absent into ``bronze.feed_events``;
3. rejected lines go to ``quarantine.feed_events`` (reason, raw line truncated to 2 KB, source file), MERGEd
   insert-if-absent on (source_file, raw_sha256).

Exactly once: the file source's checkpoint records which files each batch read; a batch replayed after a
crash (offsets written, commit not) MERGEs the same rows again, which inserts nothing. So: no loss (files are
only marked done after ``foreachBatch`` returned), no duplicates (MERGE keyed on event_id).

Late events: the stream carries a watermark on ``event_time`` (``WATERMARK``, 2 hours), but there is no
stateful operator that would drop rows behind it: de-duplication is the MERGE against the whole table, so an
event later than the watermark is still inserted (exactly once). Such events are only counted
(``late_beyond_watermark``: older than the highest event time already in bronze for these feeds, or seen
earlier in this run, minus the watermark delay) for monitoring.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from smartrehab.feeds.contracts import MAX_MESSAGE_BYTES
from smartrehab.settings import Settings
from spark_jobs.common.delta import insert_missing

log = logging.getLogger(__name__)

BRONZE = "bronze.feed_events"
QUARANTINE = "quarantine.feed_events"
WATERMARK = "2 hours"
RAW_LINE_MAX = 2048
DEFAULT_MAX_FILES = 1000

BRONZE_DDL = """
    event_id STRING NOT NULL, feed STRING, contract_version STRING, device_id STRING,
    centre STRING, unit STRING, zone STRING, room STRING, person_pk STRING,
    event_time TIMESTAMP, payload STRING, source_file STRING, ingested_at TIMESTAMP, batch_id BIGINT
"""
QUARANTINE_DDL = """
    feed STRING, reason STRING, raw_line STRING, raw_bytes BIGINT, raw_sha256 STRING NOT NULL,
    source_file STRING NOT NULL, received_at TIMESTAMP, ingested_at TIMESTAMP, batch_id BIGINT
"""

CHECK_SCHEMA = T.StructType([
    T.StructField("reason", T.StringType()),
    T.StructField("raw_line", T.StringType()),
    T.StructField("event_id", T.StringType()),
    T.StructField("feed", T.StringType()),
    T.StructField("contract_version", T.StringType()),
    T.StructField("device_id", T.StringType()),
    T.StructField("centre", T.StringType()),
    T.StructField("unit", T.StringType()),
    T.StructField("zone", T.StringType()),
    T.StructField("room", T.StringType()),
    T.StructField("person_pk", T.StringType()),
    T.StructField("event_time_us", T.LongType()),
    T.StructField("payload", T.StringType()),
])


def ensure_tables(spark: SparkSession) -> None:
    spark.sql(f"CREATE TABLE IF NOT EXISTS {BRONZE} ({BRONZE_DDL}) USING delta")
    spark.sql(f"CREATE TABLE IF NOT EXISTS {QUARANTINE} ({QUARANTINE_DDL}) USING delta")


def run_until_done(query, what: str, timeout_s: float | None = None) -> None:
    """Wait for a started streaming query (until it ends, or ``timeout_s``), stop it, and raise
    if it failed: the one way every feed stream is run to completion."""
    try:
        if timeout_s is None:
            query.awaitTermination()
        else:
            query.awaitTermination(timeout_s)
    finally:
        stop_between_batches(query)
    if query.exception() is not None:
        raise RuntimeError(f"{what} failed: {query.exception()}")


def stop_between_batches(query, wait_s: float = 300.0) -> None:
    """Stop a streaming query once its running micro-batch (if any) has committed.

    Stopping in the middle of a ``foreachBatch`` interrupts the Python call, and Spark 4's check of whether
    the resulting error is an interruption runs a regular expression over its (very long) message, which
    overflows the stack and kills the query thread noisily.

    Stops at the first moment no trigger is running, or within 50 ms of the running micro-batch's commit,
    or after ``wait_s`` whatever happens. A backlog keeps triggers running back to back: the next one may
    then have written its offsets already and is stopped while it plans; the next start runs that batch
    first, and its sink writes are idempotent MERGEs, so it is never applied twice."""
    def last_batch():
        return (query.lastProgress or {}).get("batchId", -1)

    running_at_start = last_batch()
    deadline = time.monotonic() + wait_s
    while (query.isActive and query.status.get("isTriggerActive") and last_batch() == running_at_start
           and time.monotonic() < deadline):
        time.sleep(0.05)
    if query.isActive:
        query.stop()


def checkpoint_dir(settings: Settings, feeds: list[str]) -> Path:
    from smartrehab.feeds.contracts import feed_names

    name = "all" if sorted(feeds) == feed_names() else "+".join(sorted(feeds))
    return Path(settings.var_dir) / "checkpoints" / "feeds" / name


def _check_udf(contracts_dir: str, code_tables_dir: str):
    """A pandas UDF: (raw bytes or null if oversize, first 2 KB if oversize, received_at epoch s) -> CHECK_SCHEMA.

    Only an oversize line is cut to its head in Spark; every other line crosses to Python once."""
    @F.pandas_udf(CHECK_SCHEMA)
    def check(raw: pd.Series, head: pd.Series, received: pd.Series) -> pd.DataFrame:
        import json
        from datetime import datetime as _dt

        from smartrehab.feeds.contracts import CST, load_contracts

        reg = load_contracts(contracts_dir, code_tables_dir)
        rows = []
        for data, first, recv in zip(raw, head, received, strict=True):
            at = _dt.fromtimestamp(int(recv), CST)
            event, reason = (None, "oversize") if data is None else reg.check(bytes(data), at)
            if reason is not None:
                text = bytes(first if data is None else data[:RAW_LINE_MAX]).decode("utf-8", "replace")[:RAW_LINE_MAX]
                rows.append((reason, text) + (None,) * 11)
                continue
            event = reg.upgrade(event)
            loc = event["location"]
            ts = _dt.fromisoformat(event["event_time"])
            rows.append((None, None, event["event_id"], event["feed"], event["contract_version"],
                         event["device_id"], loc.get("centre"), loc.get("unit"), loc.get("zone"), loc.get("room"),
                         event["person_pk"], int(round(ts.timestamp() * 1_000_000)),
                         json.dumps(event["payload"], ensure_ascii=False, separators=(",", ":"))))
        return pd.DataFrame(rows, columns=CHECK_SCHEMA.fieldNames())

    return check


def _source(spark: SparkSession, settings: Settings, feeds: list[str], max_files: int) -> DataFrame:
    root = Path(settings.landing_dir) / "feeds"
    pattern = f"{root}/{{{','.join(sorted(feeds))}}}/*/*.jsonl" if len(feeds) > 1 else f"{root}/{feeds[0]}/*/*.jsonl"
    root.mkdir(parents=True, exist_ok=True)
    raw = (spark.readStream.format("text").option("maxFilesPerTrigger", max_files).load(pattern)
           .select("value", F.col("_metadata.file_path").alias("source_file")))
    # Event time for the watermark (the stream's progress and any later stateful step use it); no
    # stateful operator follows, so no row is ever dropped for being late.
    hint = F.expr("try_cast(get_json_object(value, '$.event_time') as timestamp)")
    return raw.withColumn("event_time_hint", hint).withWatermark("event_time_hint", WATERMARK)


def _process(spark: SparkSession, settings: Settings, totals: dict):
    check = _check_udf(str(settings.repo_root / "contracts"), str(settings.catalog_dir / "code_tables"))
    late_s = int(WATERMARK.split()[0]) * 3600

    def batch(df: DataFrame, batch_id: int) -> None:
        t0 = time.monotonic()
        now = datetime.now(UTC)
        proc = F.lit(int(now.timestamp()))
        size = F.octet_length("value")
        binv = F.col("value").cast("binary")
        stamp = F.regexp_extract("source_file", r"_([0-9]{12})_[0-9]+\.jsonl$", 1)
        delivered = F.unix_timestamp(F.when(stamp != "", stamp), "yyyyMMddHHmm")  # session zone: +08:00
        received = F.least(F.coalesce(delivered, proc), proc)
        checked = (df.select(
            "source_file", size.alias("raw_bytes"), received.alias("received_s"),
            F.sha2(binv, 256).alias("raw_sha256"),
            F.regexp_extract("source_file", r"/feeds/([^/]+)/[0-9]{8}/[^/]+$", 1).alias("folder_feed"),
            check(F.when(size <= MAX_MESSAGE_BYTES, binv),
                  F.when(size > MAX_MESSAGE_BYTES, F.substring(binv, 1, RAW_LINE_MAX)), received).alias("c"))
            .select("*", "c.*").drop("c")
            .persist())
        ingested = F.lit(now).cast("timestamp")
        try:
            cutoff = (totals["max_event_us"] - late_s * 1_000_000) if totals["max_event_us"] is not None else None
            late_col = F.col("event_time_us") < F.lit(cutoff) if cutoff is not None else F.lit(False)
            groups = checked.groupBy("reason").agg(
                F.count(F.lit(1)).alias("n"), F.max("event_time_us").alias("max_us"),
                F.count(F.when(late_col, 1)).alias("late")).collect()
            lines = sum(g["n"] for g in groups)
            if lines == 0:
                return
            reasons = {g["reason"]: g["n"] for g in groups if g["reason"] is not None}
            ok = next((g for g in groups if g["reason"] is None), None)
            stats = {"valid": ok["n"] if ok else 0, "max_us": ok["max_us"] if ok else None}
            late = ok["late"] if ok else 0
            valid = (checked.where(F.col("reason").isNull())
                     .withColumn("event_time", F.timestamp_micros("event_time_us"))
                     .dropDuplicates(["event_id"])
                     .select("event_id", "feed", "contract_version", "device_id", "centre", "unit", "zone", "room",
                             "person_pk", "event_time", "payload", "source_file",
                             ingested.alias("ingested_at"), F.lit(batch_id).cast("bigint").alias("batch_id")))
            bad = (checked.where(F.col("reason").isNotNull())
                   .dropDuplicates(["source_file", "raw_sha256"])
                   .select(F.col("folder_feed").alias("feed"), "reason", "raw_line", "raw_bytes", "raw_sha256",
                           "source_file", F.timestamp_seconds("received_s").alias("received_at"),
                           ingested.alias("ingested_at"), F.lit(batch_id).cast("bigint").alias("batch_id")))
            inserted = insert_missing(spark, valid, BRONZE, ["event_id"]) if stats["valid"] else 0
            quarantined = insert_missing(spark, bad, QUARANTINE, ["source_file", "raw_sha256"]) if reasons else 0
        finally:
            checked.unpersist()
        if stats["max_us"] is not None:
            totals["max_event_us"] = max(totals["max_event_us"] or 0, stats["max_us"])
        totals["batches"] += 1
        totals["batch_log"].append((lines, round(time.monotonic() - t0, 3)))
        totals["lines"] += lines
        totals["valid"] += stats["valid"]
        totals["inserted"] += inserted
        totals["quarantine_inserted"] += quarantined
        totals["late_beyond_watermark"] += late
        for r, n in reasons.items():
            totals["rejected"][r] = totals["rejected"].get(r, 0) + n
        log.info("feeds batch %s: %s lines, %s valid, %s inserted, %s rejected (%.1f s)",
                 batch_id, lines, stats["valid"], inserted, sum(reasons.values()), time.monotonic() - t0)

    return batch


def run(spark: SparkSession, settings: Settings, available_now: bool = True, feeds: list[str] | None = None, *,
        max_files_per_trigger: int = DEFAULT_MAX_FILES, processing_time: str = "1 minute",
        timeout_s: float | None = None) -> dict:
    """Ingest the landing zone's feed files into bronze / quarantine; returns counts.

    ``available_now=True`` (what Airflow schedules): every file not yet in the checkpoint, in micro-batches
    of ``max_files_per_trigger`` files, then stop. ``available_now=False``: continuous mode, a micro-batch every
    ``processing_time``, until ``timeout_s`` (None: until stopped).
    """
    from smartrehab.feeds.contracts import feed_names

    known = feed_names()
    feeds = sorted(feeds or known)
    unknown = set(feeds) - set(known)
    if unknown:
        raise ValueError(f"unknown feeds {sorted(unknown)}")
    ensure_tables(spark)
    totals: dict = {"batches": 0, "lines": 0, "valid": 0, "inserted": 0, "quarantine_inserted": 0,
                    "late_beyond_watermark": 0, "rejected": {}, "max_event_us": None, "batch_log": []}
    # Lateness is measured against the latest event time already in bronze for these feeds.
    latest = (spark.table(BRONZE).where(F.col("feed").isin(feeds))
              .agg(F.max(F.unix_micros("event_time")).alias("m")).first()["m"])
    totals["max_event_us"] = latest
    ckpt = checkpoint_dir(settings, feeds)
    writer = (_source(spark, settings, feeds, max_files_per_trigger).writeStream
              .queryName("feeds_" + ckpt.name.replace("+", "_"))
              .option("checkpointLocation", str(ckpt))
              .foreachBatch(_process(spark, settings, totals)))
    writer = writer.trigger(availableNow=True) if available_now else writer.trigger(processingTime=processing_time)
    t0 = time.monotonic()
    query = writer.start()
    run_until_done(query, "feeds stream", None if available_now else timeout_s)
    totals.pop("max_event_us")
    totals["batch_seconds"] = round(sum(s for _, s in totals["batch_log"]), 3)
    totals["duplicates_skipped"] = totals["valid"] - totals["inserted"]
    totals["seconds"] = round(time.monotonic() - t0, 2)
    totals["feeds"] = feeds
    totals["checkpoint"] = str(ckpt)
    return totals
