"""Live feeds quality: freshness per feed and per device, volume anomalies, range checks -> ``audit.feed_alerts``.

Every run evaluates, at a clock ``as_of`` (``clock`` in ``expectations/feeds.yaml``: the wall clock, or the
latest event time over all feeds for replayed / simulated days), and writes one row per finding:

* ``feed_silent``: no event of a feed at a centre for longer than its ``feed_silence_minutes``;
* ``device_silent``: a device of a cadenced feed (``device_silence_minutes`` set) not heard for longer than
  that (from ``silver.feed_devices``: last event time per device);
* ``volume_low`` / ``volume_high``: a complete hour of a feed at a centre whose count is below ``low_ratio`` or
  above ``high_ratio`` times the mean of the previous ``baseline_hours`` hours (only where that mean is at
  least ``min_baseline``; the 24 complete hours before ``as_of`` are checked);
* ``range_violation``: an hour of a feed at a centre with values outside the plausible ranges of ``ranges``
  (count and one example event in ``details``).

Rows carry kind, feed, centre, device_id, hour, last_seen, threshold (text, with its unit), observed,
details (JSON) and as_of. The key ``alert_id`` is a hash of what identifies the finding (for a silence: the
device or feed and its last event time, so a silence that goes on is one alert whose ``observed`` grows), and
the MERGE rewrites a row only when a figure changed: re-running with the same data and clock changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from smartrehab.feeds.contracts import CST
from smartrehab.feeds.monitoring import Thresholds, load_thresholds
from smartrehab.settings import Settings
from spark_jobs.common.delta import merge_changed, table_exists
from spark_jobs.feeds.silver import DEVICES, SILVER

ALERTS = "audit.feed_alerts"
ALERTS_DDL = """alert_id STRING NOT NULL, kind STRING, feed STRING, centre STRING, device_id STRING, hour TIMESTAMP,
    last_seen TIMESTAMP, threshold STRING, observed DOUBLE, details STRING, as_of TIMESTAMP, detected_at TIMESTAMP"""
CHECK_HOURS = 24
COLUMNS = ["alert_id", "kind", "feed", "centre", "device_id", "hour", "last_seen", "threshold", "observed",
           "details", "as_of"]


def clock(spark: SparkSession, th: Thresholds, as_of: datetime | None = None) -> datetime | None:
    """The evaluation time, aware (+08:00): given (naive = +08:00), the wall clock, or the latest event time.

    Aware datetimes throughout: PySpark turns naive ones into instants with the machine's zone, not the
    session's, so a naive value would shift by the difference.
    """
    if as_of is not None:
        return as_of.astimezone(CST) if as_of.tzinfo else as_of.replace(tzinfo=CST)
    if th.clock == "wall":
        return datetime.now(CST)
    if not table_exists(spark, DEVICES):
        return None
    latest = spark.table(DEVICES).agg(F.max("last_seen")).first()[0]
    # Collected timestamps are naive in the machine's zone: make them aware before converting.
    return None if latest is None else latest.astimezone(CST)


def _alert_id(*parts: Column | str) -> Column:
    cols = [F.col(p) if isinstance(p, str) else p for p in parts]
    return F.sha2(F.concat_ws("|", *[F.coalesce(c.cast("string"), F.lit("")) for c in cols]), 256)


def _minutes_since(ts: Column, as_of: datetime) -> Column:
    return (F.unix_timestamp(F.lit(as_of).cast("timestamp")) - F.unix_timestamp(ts)) / 60.0


def _silence_thresholds(spark: SparkSession, minutes: dict[str, int | None]) -> DataFrame | None:
    rows = [(f, m) for f, m in minutes.items() if m is not None]
    return spark.createDataFrame(rows, "feed STRING, limit_min INT") if rows else None


def device_silence(spark: SparkSession, devices: DataFrame, th: Thresholds, as_of: datetime) -> DataFrame | None:
    limits = _silence_thresholds(spark, th.device_silence_minutes)
    if limits is None:
        return None
    d = devices.join(F.broadcast(limits), "feed").withColumn("silent_min", _minutes_since(F.col("last_seen"), as_of))
    d = d.where(F.col("silent_min") > F.col("limit_min"))
    return d.select(
        _alert_id(F.lit("device_silent"), "device_id", "last_seen").alias("alert_id"),
        F.lit("device_silent").alias("kind"), "feed", "centre", "device_id",
        F.lit(None).cast("timestamp").alias("hour"), "last_seen",
        F.concat(F.col("limit_min").cast("string"), F.lit(" min")).alias("threshold"),
        F.round("silent_min", 1).alias("observed"),
        F.to_json(F.struct("location_key", "first_seen")).alias("details"))


def feed_silence(spark: SparkSession, devices: DataFrame, th: Thresholds, as_of: datetime) -> DataFrame | None:
    limits = _silence_thresholds(spark, th.feed_silence_minutes)
    if limits is None:
        return None
    f = (devices.groupBy("feed", "centre").agg(F.max("last_seen").alias("last_seen"),
                                                F.max_by("device_id", "last_seen").alias("last_device"))
         .join(F.broadcast(limits), "feed").withColumn("silent_min", _minutes_since(F.col("last_seen"), as_of))
         .where(F.col("silent_min") > F.col("limit_min")))
    return f.select(
        _alert_id(F.lit("feed_silent"), "feed", "centre", "last_seen").alias("alert_id"),
        F.lit("feed_silent").alias("kind"), "feed", "centre", F.lit(None).cast("string").alias("device_id"),
        F.lit(None).cast("timestamp").alias("hour"), "last_seen",
        F.concat(F.col("limit_min").cast("string"), F.lit(" min")).alias("threshold"),
        F.round("silent_min", 1).alias("observed"),
        F.to_json(F.struct(F.col("last_device"))).alias("details"))


def hourly_counts(events: DataFrame, feeds: list[str], start: datetime, end: datetime) -> DataFrame:
    """Events per (feed, centre, hour) for hours in [start, end), zero-filled from each pair's first hour."""
    ev = events.where(F.col("feed").isin(*feeds) & (F.col("event_hour") >= F.lit(start))
                      & (F.col("event_hour") < F.lit(end)))
    counts = ev.groupBy("feed", "centre", F.col("event_hour").alias("hour")).agg(F.count(F.lit(1)).alias("n"))
    first = counts.groupBy("feed", "centre").agg(F.min("hour").alias("first_hour"))
    grid = first.select("feed", "centre", "first_hour", F.explode(F.sequence(
        F.lit(start).cast("timestamp"), F.lit(end - timedelta(hours=1)).cast("timestamp"),
        F.expr("interval 1 hour"))).alias("hour"))
    return (grid.where(F.col("hour") >= F.col("first_hour")).join(counts, ["feed", "centre", "hour"], "left")
            .fillna(0, ["n"]))


def volume_anomalies(events: DataFrame, th: Thresholds, as_of: datetime) -> DataFrame | None:
    if not th.volume_feeds:
        return None
    end = as_of.replace(minute=0, second=0, microsecond=0)       # complete hours only
    base_h = th.volume_baseline_hours
    start = end - timedelta(hours=CHECK_HOURS + base_h)
    c = hourly_counts(events, list(th.volume_feeds), start, end)
    prev = c.select("feed", "centre", F.col("hour").alias("p_hour"), F.col("n").alias("p_n"),
                    F.col("first_hour").alias("p_first"))
    j = c.where(F.col("hour") >= F.lit(end - timedelta(hours=CHECK_HOURS))).join(prev, ["feed", "centre"])
    j = j.where((F.col("p_hour") < F.col("hour"))
                & (F.col("p_hour") >= F.col("hour") - F.expr(f"interval {base_h} hours")))
    b = (j.groupBy("feed", "centre", "hour", "n", "first_hour").agg(F.sum("p_n").alias("p_sum"))
         # A full baseline only: the pair must have been seen since before the baseline window.
         .where(F.col("first_hour") <= F.col("hour") - F.expr(f"interval {base_h} hours"))
         .withColumn("baseline", F.col("p_sum") / F.lit(base_h)))
    b = b.where(F.col("baseline") >= th.volume_min_baseline)
    kind = (F.when(F.col("n") < F.col("baseline") * th.volume_low_ratio, "volume_low")
            .when(F.col("n") > F.col("baseline") * th.volume_high_ratio, "volume_high"))
    b = b.withColumn("kind", kind).where(F.col("kind").isNotNull())
    thr = F.when(F.col("kind") == "volume_low",
                 F.format_string(f"< {th.volume_low_ratio} x baseline %.1f/h", F.col("baseline"))) \
        .otherwise(F.format_string(f"> {th.volume_high_ratio} x baseline %.1f/h", F.col("baseline")))
    return b.select(
        _alert_id("kind", "feed", "centre", "hour").alias("alert_id"), "kind", "feed", "centre",
        F.lit(None).cast("string").alias("device_id"), "hour", F.lit(None).cast("timestamp").alias("last_seen"),
        thr.alias("threshold"), F.col("n").cast("double").alias("observed"),
        F.to_json(F.struct(F.round("baseline", 2).alias("baseline"), F.lit(base_h).alias("baseline_hours")))
        .alias("details"))


def range_violations(events: DataFrame, th: Thresholds, as_of: datetime) -> DataFrame | None:
    if not th.ranges:
        return None
    start = as_of - timedelta(hours=CHECK_HOURS)
    ev = events.where((F.col("event_time") > F.lit(start)) & (F.col("event_time") <= F.lit(as_of)))
    parts = []
    for r in th.ranges:
        v = F.col(f"payload_{r.feed}.{r.field}")
        bad = F.lit(False)
        if r.min is not None:
            bad = bad | (v < r.min)
        if r.max is not None:
            bad = bad | (v > r.max)
        rule = f"{r.feed}.{r.field} in [{'' if r.min is None else r.min}, {'' if r.max is None else r.max}]"
        parts.append(ev.where((F.col("feed") == r.feed) & F.coalesce(bad, F.lit(False)))
                     .groupBy("feed", "centre", F.col("event_hour").alias("hour"))
                     .agg(F.count(F.lit(1)).alias("n"), F.min("event_id").alias("example"))
                     .withColumn("rule", F.lit(rule)))
    df = parts[0]
    for p in parts[1:]:
        df = df.unionByName(p)
    return df.select(
        _alert_id(F.lit("range_violation"), "rule", "centre", "hour").alias("alert_id"),
        F.lit("range_violation").alias("kind"), "feed", "centre", F.lit(None).cast("string").alias("device_id"),
        "hour", F.lit(None).cast("timestamp").alias("last_seen"), F.col("rule").alias("threshold"),
        F.col("n").cast("double").alias("observed"), F.to_json(F.struct("example")).alias("details"))


def evaluate(spark: SparkSession, events: DataFrame, devices: DataFrame, th: Thresholds,
             as_of: datetime) -> DataFrame:
    """Every finding at ``as_of`` (pure: reads only the given frames)."""
    parts = [p for p in (feed_silence(spark, devices, th, as_of), device_silence(spark, devices, th, as_of),
                         volume_anomalies(events, th, as_of), range_violations(events, th, as_of)) if p is not None]
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out.withColumn("as_of", F.lit(as_of).cast("timestamp")).select(*COLUMNS)


def run(spark: SparkSession, settings: Settings, as_of: datetime | None = None,
        thresholds: Thresholds | None = None) -> dict:
    """Evaluate and MERGE the findings into audit.feed_alerts; returns counts per kind and the clock used."""
    th = thresholds or load_thresholds()
    spark.sql(f"CREATE TABLE IF NOT EXISTS {ALERTS} ({ALERTS_DDL}) USING delta")
    now = clock(spark, th, as_of)
    if now is None or not table_exists(spark, SILVER):
        return {"as_of": None, "alerts": {}, "inserted": 0, "updated": 0}
    events = spark.table(SILVER).where(
        F.col("event_date") >= F.lit((now - timedelta(hours=CHECK_HOURS + th.volume_baseline_hours + 24)).date()))
    found = evaluate(spark, events, spark.table(DEVICES), th, now)
    found = found.withColumn("detected_at", F.lit(datetime.now(UTC)).cast("timestamp")).persist()
    try:
        kinds = {r["kind"]: r["n"] for r in found.groupBy("kind").agg(F.count(F.lit(1)).alias("n")).collect()}
        res = merge_changed(spark, found, ALERTS, ["alert_id"], ignore=("detected_at", "as_of")) \
            if kinds else {"inserted": 0, "updated": 0}
    finally:
        found.unpersist()
    return {"as_of": now.isoformat(), "clock": th.clock, "alerts": kinds, **res}
