"""Live feeds, bronze -> silver: conformed events joined to the person and location dimensions.

Incremental: a Structured Streaming query reads the rows appended to ``bronze.feed_events`` since its
checkpoint (``<var_dir>/checkpoints/feeds_silver``; bronze only ever grows by insert-only MERGEs) and, per
micro-batch in ``foreachBatch``:

1. **conform**: the payload (already in the feed's latest contract shape in bronze) is parsed with
   ``from_json`` into a typed struct column per feed, ``payload_<feed>`` (the latest version's fields and
   types from ``contracts/``; null for the other feeds); ``event_hour`` and ``event_date`` are added;
2. **person**: the event's ``person_pk`` is resolved to the version of ``silver.person`` (SCD2, written by
   the legacy ingest) valid at ``event_time`` (``valid_from <= event_time < valid_to``); the row carries that
   version's key ``person_valid_from`` and ``person_match``: ``matched``, ``no_person`` (the event names
   nobody), ``unknown_person`` (not in silver.person, yet) or ``before_first_version``;
3. **location**: ``location_key`` (SHA-256 of centre|unit|zone|room) into ``silver.dim_location``, which
   gains every new place with its centre and zone names (code tables) and its kind (dormitory, corridor,
   patrol checkpoint, perimeter segment, facility, unit, centre);
4. rows are MERGEd insert-if-absent on ``event_id`` into ``silver.feed_events``; ``silver.feed_devices``
   keeps each device's first and last event time (freshness per device reads it).

Exactly once and idempotent: a replayed micro-batch inserts nothing (MERGE on event_id), the device
registry only moves by min / max, and with no new bronze rows nothing runs at all. The patrol plan files
written beside the feeds (``<landing>/feeds/_plans/*.jsonl``) are loaded into ``silver.feed_patrol_plan``
(insert-if-absent on round and checkpoint) for the hourly coverage against plan.

Events whose person was not in silver.person yet are looked up again on every run (``resolve_pending``):
once the legacy ingest has loaded the person, they are re-pointed at the right version.
"""

from __future__ import annotations

import csv
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from smartrehab.settings import Settings
from spark_jobs.common.delta import insert_missing, merge_changed, table_exists
from spark_jobs.feeds.stream import run_until_done

log = logging.getLogger(__name__)

BRONZE = "bronze.feed_events"
SILVER = "silver.feed_events"
DIM_LOCATION = "silver.dim_location"
DEVICES = "silver.feed_devices"
PATROL_PLAN = "silver.feed_patrol_plan"
PERSON = "silver.person"

PATROL_PLAN_DDL = """centre STRING, unit STRING, zone STRING, route_id STRING, round_id STRING, checkpoint_id STRING,
    sequence INT, planned_time TIMESTAMP, officer_code STRING, device_id STRING"""


def checkpoint_dir(settings: Settings, name: str = "feeds_silver") -> Path:
    return Path(settings.var_dir) / "checkpoints" / name


def payload_ddl(feed: str) -> str:
    """STRUCT DDL of the feed's latest contract version's payload (the shape bronze stores)."""
    from smartrehab.feeds.contracts import load_contracts

    reg = load_contracts()
    latest = reg.contract(feed).latest
    fields = reg.spark_fields(feed, latest)
    members = [(k.split(".", 1)[1], v) for k, v in fields.items() if k.startswith("payload.")]
    return "STRUCT<" + ", ".join(f"`{n}`: {t.upper()}" for n, t in members) + ">"


def _code_labels(settings: Settings, table: str) -> dict[str, str]:
    with open(settings.catalog_dir / "code_tables" / f"{table}.csv", encoding="utf-8") as fh:
        return {r["code"]: r["label_zh"] for r in csv.DictReader(fh)}


def location_key(centre, unit, zone, room):
    """The location dimension's key: SHA-256 of centre|unit|zone|room (nulls as empty)."""
    parts = [F.coalesce(c, F.lit("")) for c in (centre, unit, zone, room)]
    return F.sha2(F.concat_ws("|", *parts), 256)


def place_kind(unit, room):
    return (F.when(room.isNull(), F.when(unit.isNull(), F.lit("centre")).otherwise(F.lit("unit")))
            .when(room.rlike(r"^D[0-9]+-[0-9]+$"), F.lit("dormitory"))
            .when(room.rlike(r"-COR$"), F.lit("corridor"))
            .when(room.rlike(r"-CP[0-9]+$"), F.lit("patrol_checkpoint"))
            .when(room.rlike(r"^PER-"), F.lit("perimeter"))
            .otherwise(F.lit("facility")))


def person_versions(spark: SparkSession, table: str = PERSON) -> DataFrame | None:
    """(person_pk, valid_from, valid_to) of every non-empty version of silver.person, or None if absent."""
    if not table_exists(spark, table):
        return None
    p = spark.table(table).select("person_pk", "valid_from", "valid_to").where(F.col("person_pk").isNotNull())
    # Two versions with the same valid_from chain into an empty interval [t, t): drop it.
    return p.where(F.col("valid_to").isNull() | (F.col("valid_to") > F.col("valid_from"))).distinct()


def resolve_person(events: DataFrame, persons: DataFrame | None) -> DataFrame:
    """Adds ``person_valid_from`` (the SCD2 version valid at event_time) and ``person_match``."""
    if persons is None:
        return (events.withColumn("person_valid_from", F.lit(None).cast("timestamp"))
                .withColumn("person_match", F.when(F.col("person_pk").isNull(), "no_person")
                            .otherwise("unknown_person")))
    p = persons.select(F.col("person_pk").alias("_pk"), F.col("valid_from").alias("_vf"),
                       F.col("valid_to").alias("_vt"))
    cond = ((F.col("person_pk") == F.col("_pk")) & (F.col("_vf") <= F.col("event_time"))
            & (F.col("_vt").isNull() | (F.col("event_time") < F.col("_vt"))))
    joined = events.join(F.broadcast(p), cond, "left")
    known = F.broadcast(persons.select(F.col("person_pk").alias("_known")).distinct())
    joined = joined.join(known, joined["person_pk"] == known["_known"], "left")
    match = (F.when(F.col("person_pk").isNull(), "no_person")
             .when(F.col("_vf").isNotNull(), "matched")
             .when(F.col("_known").isNotNull(), "before_first_version")
             .otherwise("unknown_person"))
    return (joined.withColumn("person_valid_from", F.col("_vf")).withColumn("person_match", match)
            .drop("_pk", "_vf", "_vt", "_known"))


def conform(bronze: DataFrame, persons: DataFrame | None, feeds: list[str]) -> DataFrame:
    """Bronze rows -> silver rows (typed payload per feed, person version, location key). Pure transform."""
    out = bronze.select(
        "event_id", "feed", "contract_version", "device_id", "centre", "unit", "zone", "room", "person_pk",
        "event_time", "payload", "source_file", F.col("ingested_at").alias("bronze_ingested_at"))
    out = (out.withColumn("event_date", F.to_date("event_time"))
           .withColumn("event_hour", F.date_trunc("hour", "event_time"))
           .withColumn("location_key", location_key(F.col("centre"), F.col("unit"), F.col("zone"), F.col("room"))))
    for feed in feeds:
        out = out.withColumn(f"payload_{feed}",
                             F.when(F.col("feed") == feed, F.from_json("payload", payload_ddl(feed))))
    return resolve_person(out.drop("payload"), persons)


def locations(silver_rows: DataFrame, settings: Settings) -> DataFrame:
    """New rows of the location dimension seen in ``silver_rows`` (first event time per place)."""
    centres, zones = _code_labels(settings, "centre"), _code_labels(settings, "zone")
    cmap = F.create_map(*[F.lit(x) for kv in centres.items() for x in kv])
    zmap = F.create_map(*[F.lit(x) for kv in zones.items() for x in kv])
    return (silver_rows.groupBy("location_key", "centre", "unit", "zone", "room")
            .agg(F.min("event_time").alias("first_seen"))
            .select("location_key", "centre", F.element_at(cmap, F.col("centre")).alias("centre_name"),
                    "unit", "zone", F.element_at(zmap, F.col("zone")).alias("zone_name"), "room",
                    place_kind(F.col("unit"), F.col("room")).alias("place_kind"), "first_seen"))


def device_updates(spark: SparkSession, silver_rows: DataFrame) -> DataFrame:
    """Device registry rows after ``silver_rows``: first / last event time combined with what is known."""
    new = (silver_rows.groupBy("device_id").agg(
        F.first("feed").alias("feed"), F.first("centre").alias("centre"),
        F.max_by("location_key", "event_time").alias("location_key"),
        F.min("event_time").alias("first_seen"), F.max("event_time").alias("last_seen")))
    if not table_exists(spark, DEVICES):
        return new
    old = spark.table(DEVICES).select("device_id", F.col("first_seen").alias("o_first"),
                                      F.col("last_seen").alias("o_last"), F.col("location_key").alias("o_loc"))
    j = new.join(old, "device_id", "left")
    return j.select(
        "device_id", "feed", "centre",
        F.when(F.col("o_last").isNull() | (F.col("last_seen") >= F.col("o_last")), F.col("location_key"))
        .otherwise(F.col("o_loc")).alias("location_key"),
        F.least("first_seen", F.coalesce("o_first", "first_seen")).alias("first_seen"),
        F.greatest("last_seen", F.coalesce("o_last", "last_seen")).alias("last_seen"))


def load_patrol_plan(spark: SparkSession, settings: Settings) -> int:
    """Insert the planned patrol checkpoints of ``<landing>/feeds/_plans/*.jsonl`` not loaded yet."""
    folder = Path(settings.landing_dir) / "feeds" / "_plans"
    files = sorted(str(p) for p in folder.glob("patrol_plan_*.jsonl")) if folder.exists() else []
    if not table_exists(spark, PATROL_PLAN):
        spark.sql(f"CREATE TABLE IF NOT EXISTS {PATROL_PLAN} ({PATROL_PLAN_DDL}) USING delta")
    if not files:
        return 0
    plan = spark.read.schema(PATROL_PLAN_DDL).json(files).dropDuplicates(["round_id", "checkpoint_id"])
    return insert_missing(spark, plan, PATROL_PLAN, ["round_id", "checkpoint_id"])


def resolve_pending(spark: SparkSession, person_table: str = PERSON) -> int:
    """Re-point events whose person was unknown at conform time, now that silver.person knows them."""
    persons = person_versions(spark, person_table)
    if persons is None or not table_exists(spark, SILVER):
        return 0
    pending = spark.table(SILVER).where(F.col("person_match") == "unknown_person")
    known = pending.join(persons.select("person_pk").distinct(), "person_pk", "left_semi")
    if known.isEmpty():
        return 0
    fixed = resolve_person(known.drop("person_valid_from", "person_match"), persons)
    res = merge_changed(spark, fixed.select(*spark.table(SILVER).columns), SILVER, ["event_date", "event_id"])
    return res["updated"]


def _process(spark: SparkSession, settings: Settings, feeds: list[str], totals: dict, person_table: str):
    def batch(df: DataFrame, batch_id: int) -> None:
        t0 = time.monotonic()
        rows = conform(df, person_versions(spark, person_table), feeds)
        stamp = datetime.now(UTC)
        rows = rows.withColumn("conformed_at", F.lit(stamp).cast("timestamp")).persist()
        try:
            n = rows.count()
            if n == 0:
                return
            if not table_exists(spark, SILVER):
                rows.limit(0).write.format("delta").partitionBy("event_date").saveAsTable(SILVER)
            inserted = insert_missing(spark, rows, SILVER, ["event_date", "event_id"])
            loc = locations(rows, settings)
            if not table_exists(spark, DIM_LOCATION):
                loc.limit(0).write.format("delta").saveAsTable(DIM_LOCATION)
            new_places = insert_missing(spark, loc, DIM_LOCATION, ["location_key"])
            merge_changed(spark, device_updates(spark, rows), DEVICES, ["device_id"])
            matches = {r["person_match"]: r["n"] for r in
                       rows.groupBy("person_match").agg(F.count(F.lit(1)).alias("n")).collect()}
        finally:
            rows.unpersist()
        totals["batches"] += 1
        totals["rows"] += n
        totals["inserted"] += inserted
        totals["new_places"] += new_places
        for k, v in matches.items():
            totals["person_match"][k] = totals["person_match"].get(k, 0) + v
        totals["commits"].append((stamp, time.time()))   # conformed_at of the batch -> when it was queryable
        log.info("feeds silver batch %s: %s rows, %s inserted (%.1f s)", batch_id, n, inserted, time.monotonic() - t0)

    return batch


def start(spark: SparkSession, settings: Settings, totals: dict, *, available_now: bool = True,
          processing_time: str = "10 seconds", max_files_per_trigger: int | None = None,
          person_table: str = PERSON):
    """Start the bronze -> silver query (not waiting); ``totals`` collects counts as batches commit."""
    from smartrehab.feeds.contracts import feed_names
    from spark_jobs.feeds.stream import ensure_tables

    ensure_tables(spark)
    src = spark.readStream.format("delta").option("skipChangeCommits", "true")
    if max_files_per_trigger:
        src = src.option("maxFilesPerTrigger", max_files_per_trigger)
    writer = (src.table(BRONZE).writeStream.queryName("feeds_silver")
              .option("checkpointLocation", str(checkpoint_dir(settings)))
              .foreachBatch(_process(spark, settings, feed_names(), totals, person_table)))
    writer = writer.trigger(availableNow=True) if available_now else writer.trigger(processingTime=processing_time)
    return writer.start()


def new_totals() -> dict:
    return {"batches": 0, "rows": 0, "inserted": 0, "new_places": 0, "person_match": {}, "commits": []}


def run(spark: SparkSession, settings: Settings, person_table: str = PERSON) -> dict:
    """Conform every bronze row not yet in silver (availableNow), load new patrol plans; returns counts.

    ``person_table``: the SCD2 person dimension (``silver.person``; tests pass a crafted one).
    """
    t0 = time.monotonic()
    totals = new_totals()
    totals["plan_inserted"] = load_patrol_plan(spark, settings)
    query = start(spark, settings, totals, person_table=person_table)
    run_until_done(query, "feeds silver stream")
    totals["re_resolved"] = resolve_pending(spark, person_table)
    totals.pop("commits")
    totals["seconds"] = round(time.monotonic() - t0, 2)
    return totals
