"""Live feeds, silver -> ``silver.feed_unit_hourly``: one row per centre, unit and hour for the security picture.

Grain: one row per (centre, unit, hour) with any event, where ``unit`` is null for centre-wide places (gate,
canteen, perimeter, control room) and ``hour`` is the local (+08:00) hour of ``event_time``; patrol coverage
is counted in the hour the checkpoint was *planned* for, from ``silver.feed_patrol_plan``.

With this table we can answer questions like "which unit had more alarms, forced doors or abnormal vital
signs than usual this evening", "was every planned guard-tour checkpoint scanned last night, and on time", and
"how many devices of a unit reported, and how many wristbands ran low".

It lives in silver, not gold: it is computed by this Spark job incrementally from silver events (gold is the
dbt project's, rebuilt by ``gold_build``), and the security-situation model reads it as an input, like the
other conformed silver tables. Thresholds (clinical ranges, low battery, what counts as an anomaly) come from
``expectations/feeds.yaml``.

Incremental and idempotent: a Structured Streaming query over ``silver.feed_events`` (checkpoint
``<var_dir>/checkpoints/feeds_hourly``) collects the (centre, unit, hour) keys its new rows touch (a late event
touches its own, old hour; a patrol scan also touches its planned hour), recomputes those rows from all of
silver, and MERGEs them (``merge_changed``: a row is rewritten only if a figure changed).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from smartrehab.feeds.contracts import CST
from smartrehab.feeds.monitoring import Thresholds, load_thresholds
from smartrehab.settings import Settings
from spark_jobs.common.delta import merge_changed, table_exists
from spark_jobs.feeds.silver import PATROL_PLAN, SILVER
from spark_jobs.feeds.stream import run_until_done

log = logging.getLogger(__name__)

HOURLY = "silver.feed_unit_hourly"
KEYS = ["centre", "unit", "hour"]
VIDEO_ALERT_BEHAVIOURS = ("fall", "crowd_gathering", "loitering_near_wall", "tripwire_crossing", "sudden_running")
HELP_CALLS = ("help", "medical", "emergency")


def checkpoint_dir(settings: Settings) -> Path:
    return Path(settings.var_dir) / "checkpoints" / "feeds_hourly"


def _count(cond: Column) -> Column:
    return F.count(F.when(cond, F.lit(1)))


def _distinct(cond: Column, col: str) -> Column:
    return F.count_distinct(F.when(cond, F.col(col)))


def vitals_out_of_range(th: Thresholds) -> Column:
    """True when any reading of the vitals payload is outside its normal range (nulls never count)."""
    conds = [(F.col(f"payload_vitals.{k}") < lo) | (F.col(f"payload_vitals.{k}") > hi)
             for k, (lo, hi) in th.vitals_normal.items()]
    out = F.lit(False)
    for c in conds:
        out = out | F.coalesce(c, F.lit(False))
    return out


def event_metrics(events: DataFrame, th: Thresholds) -> DataFrame:
    """Per (centre, unit, hour) figures of the events (everything but patrol coverage)."""
    feed = F.col("feed")
    alarm, vit, acc = F.col("payload_alarm"), F.col("payload_vitals"), F.col("payload_access")
    video, ic, per = F.col("payload_video_analytics"), F.col("payload_intercom"), F.col("payload_perimeter")
    raised = (feed == "alarm") & (alarm["state"] == "raised")
    is_vitals = feed == "vitals"
    return (events.withColumn("hour", F.col("event_hour")).groupBy(*KEYS).agg(
        F.max(F.when(F.col("zone") != "99", F.col("zone"))).alias("zone"),
        F.count(F.lit(1)).alias("events"),
        F.count_distinct("person_pk").alias("persons_seen"),
        _count(raised).alias("alarms_raised"),
        _count(raised & (alarm["severity"] >= 3)).alias("alarms_severe"),
        _count((feed == "perimeter") & (per["event_type"] == "intrusion")).alias("perimeter_intrusions"),
        _count(feed == "access").alias("access_events"),
        _count((feed == "access") & acc["result"].isin(*th.access_anomaly_results)).alias("access_anomalies"),
        _count((feed == "access") & (acc["result"] == "forced_open")).alias("access_forced"),
        _count((feed == "video_analytics") & video["behaviour"].isin(*VIDEO_ALERT_BEHAVIOURS)).alias("video_alerts"),
        _count((feed == "video_analytics") & (video["behaviour"] == "headcount")
               & (video["headcount"] != video["expected_headcount"])).alias("headcount_mismatches"),
        _count((feed == "intercom") & ic["call_type"].isin(*HELP_CALLS)).alias("help_calls"),
        _count((feed == "behaviour_score") & (F.col("payload_behaviour_score.entry_type") == "serious_violation"))
        .alias("serious_violations"),
        _count(is_vitals).alias("vitals_readings"),
        _count(is_vitals & vitals_out_of_range(th)).alias("vitals_out_of_range"),
        _distinct(is_vitals & vitals_out_of_range(th), "person_pk").alias("persons_vitals_out_of_range"),
        _count(feed == "patrol").alias("patrol_scans"),
        F.count_distinct("device_id").alias("devices_reporting"),
        _distinct(is_vitals & (vit["battery_pct"] < th.low_battery_pct), "device_id").alias("wristbands_low_battery"),
        _distinct(is_vitals & (vit["worn"] == F.lit(False)), "device_id").alias("wristbands_not_worn"),
        _count((raised & alarm["alarm_type"].isin(*th.fault_alarm_types))
               | ((feed == "perimeter") & per["event_type"].isin(*th.fault_perimeter_events))).alias("device_faults"),
    ))


def patrol_coverage(plan: DataFrame, scans: DataFrame, th: Thresholds) -> DataFrame:
    """Per (centre, unit, planned hour): checkpoints planned, scanned, and scanned on time."""
    s = (scans.where(F.col("feed") == "patrol")
         .select(F.col("payload_patrol.round_id").alias("round_id"),
                 F.col("payload_patrol.checkpoint_id").alias("checkpoint_id"),
                 F.abs(F.col("payload_patrol.deviation_s")).alias("dev"))
         .groupBy("round_id", "checkpoint_id").agg(F.min("dev").alias("dev")))
    j = plan.withColumn("hour", F.date_trunc("hour", "planned_time")).join(s, ["round_id", "checkpoint_id"], "left")
    return j.groupBy(*KEYS).agg(
        F.count(F.lit(1)).alias("patrol_planned"),
        _count(F.col("dev").isNotNull()).alias("patrol_covered"),
        _count(F.col("dev") <= th.patrol_on_time_s).alias("patrol_on_time"))


def _keyed(df: DataFrame, keys: DataFrame) -> DataFrame:
    """Rows of ``df`` whose (centre, unit, hour) is in ``keys`` (unit compared null-safely)."""
    k = keys.select(*[F.col(c).alias(f"_k_{c}") for c in KEYS])
    cond = ((df["centre"] == k["_k_centre"]) & df["unit"].eqNullSafe(k["_k_unit"]) & (df["hour"] == k["_k_hour"]))
    return df.join(F.broadcast(k), cond, "left_semi")


def compute(events: DataFrame, plan: DataFrame, keys: DataFrame, th: Thresholds) -> DataFrame:
    """The hourly rows of ``keys``, from silver ``events`` and the patrol ``plan`` (pure transform)."""
    ev = _keyed(events.withColumn("hour", F.col("event_hour")), keys).drop("hour")
    pl = _keyed(plan.withColumn("hour", F.date_trunc("hour", "planned_time")), keys).drop("hour")
    m = event_metrics(ev, th)
    cov = patrol_coverage(pl, events, th)
    out = m.join(cov, [m["centre"] == cov["centre"], m["unit"].eqNullSafe(cov["unit"]), m["hour"] == cov["hour"]],
                 "left").select(m["*"], "patrol_planned", "patrol_covered", "patrol_on_time")
    out = out.fillna(0, ["patrol_planned", "patrol_covered", "patrol_on_time"])
    return out.withColumn(
        "patrol_coverage",
        F.when(F.col("patrol_planned") > 0, F.round(F.col("patrol_covered") / F.col("patrol_planned"), 4)))


def touched_keys(new_rows: DataFrame, plan: DataFrame) -> DataFrame:
    """(centre, unit, hour) keys of new silver rows, plus the planned hours of patrol scans among them."""
    ev = new_rows.select("centre", "unit", F.col("event_hour").alias("hour"))
    scans = (new_rows.where(F.col("feed") == "patrol")
             .select(F.col("payload_patrol.round_id").alias("round_id"),
                     F.col("payload_patrol.checkpoint_id").alias("checkpoint_id")))
    planned = (plan.join(scans, ["round_id", "checkpoint_id"], "left_semi")
               .select("centre", "unit", F.date_trunc("hour", "planned_time").alias("hour")))
    return ev.unionByName(planned).distinct()


def recompute(spark: SparkSession, keys: DataFrame, th: Thresholds) -> dict:
    keys = keys.persist()
    try:
        hours = [r["hour"] for r in keys.select("hour").distinct().collect()]
        if not hours:
            return {"keys": 0, "inserted": 0, "updated": 0}
        # Collected timestamps are naive in the machine's zone; partitions are +08:00 dates.
        dates = sorted({h.astimezone(CST).date() for h in hours})
        events = spark.table(SILVER)
        # Partition pruning on event_date; patrol scans of a planned hour may come a day later.
        lo, hi = dates[0], dates[-1]
        ev = events.where(F.col("event_date").between(F.lit(lo), F.date_add(F.lit(hi), 1)))
        rows = compute(ev, spark.table(PATROL_PLAN), keys, th)
        rows = rows.withColumn("computed_at", F.lit(datetime.now(UTC)).cast("timestamp"))
        res = merge_changed(spark, rows, HOURLY, KEYS, ignore=("computed_at",))
        return {"keys": keys.count(), **res}
    finally:
        keys.unpersist()


def run(spark: SparkSession, settings: Settings, thresholds: Thresholds | None = None) -> dict:
    """Recompute the hours touched by silver rows added since the last run (availableNow)."""
    th = thresholds or load_thresholds()
    totals = {"batches": 0, "keys": 0, "inserted": 0, "updated": 0}
    t0 = time.monotonic()
    if not table_exists(spark, SILVER):
        return {**totals, "seconds": 0.0}
    from spark_jobs.feeds.silver import PATROL_PLAN_DDL

    spark.sql(f"CREATE TABLE IF NOT EXISTS {PATROL_PLAN} ({PATROL_PLAN_DDL}) USING delta")

    def batch(df: DataFrame, batch_id: int) -> None:
        res = recompute(spark, touched_keys(df, spark.table(PATROL_PLAN)), th)
        totals["batches"] += 1
        for k in ("keys", "inserted", "updated"):
            totals[k] += res[k]
        log.info("feeds hourly batch %s: %s", batch_id, res)

    query = (spark.readStream.format("delta").option("skipChangeCommits", "true").table(SILVER)
             .writeStream.queryName("feeds_hourly").option("checkpointLocation", str(checkpoint_dir(settings)))
             .foreachBatch(batch).trigger(availableNow=True).start())
    run_until_done(query, "feeds hourly stream")
    totals["seconds"] = round(time.monotonic() - t0, 2)
    return totals
