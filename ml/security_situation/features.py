"""The security-situation feature frame: one row per unit and day, from silver (one query, ``features.sql``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from ml.common.lake import FeatureError, register_known_until
from ml.security_situation import contract

SQL = Path(__file__).with_name("features.sql")
SOURCE_TABLES = ("feed_unit_hourly", "incident", "zone_placement", "admission")


def check_sources(spark, silver: str = "silver") -> None:
    missing = [f"{silver}.{t}" for t in SOURCE_TABLES if not spark.catalog.tableExists(f"{silver}.{t}")]
    if missing:
        raise FeatureError("security features need tables that are not there: " + ", ".join(missing)
                           + " (run feeds_ingest for the live feeds and legacy_ingest for AQ_SJDJ, ZJ_FQFQ, ZJ_RSDJ)")
    if spark.table(f"{silver}.feed_unit_hourly").limit(1).count() == 0:
        raise FeatureError(f"{silver}.feed_unit_hourly is empty: no live-feed data has been ingested yet")


def build(spark, silver: str = "silver"):
    """The feature frame (a Spark DataFrame with exactly ``contract.COLUMNS``), every unit and feed day."""
    import jinja2

    check_sources(spark, silver)
    sql = jinja2.Template(SQL.read_text(encoding="utf-8"), undefined=jinja2.StrictUndefined).render(
        silver=silver, horizon=contract.HORIZON_DAYS)
    frame = spark.sql(sql)
    if sorted(frame.columns) != sorted(contract.COLUMNS):
        raise FeatureError(f"features.sql returns {frame.columns}, the contract says {contract.COLUMNS}")
    return frame.select(*contract.COLUMNS)


def incidents_known_until(spark):
    """The last day the incident register (AQ_SJDJ) is complete through: labels need their whole horizon."""
    return register_known_until(spark, "AQ_SJDJ")


def to_pandas(frame, until):
    """The frame in pandas, with the label set to null where its horizon reaches past ``until`` (the last
    day whose incidents are known: ``incidents_known_until``)."""
    pdf = frame.toPandas().sort_values(contract.KEYS).reset_index(drop=True)
    known = pdf["score_date"] + timedelta(days=contract.HORIZON_DAYS) <= until
    pdf[contract.LABEL] = pdf[contract.LABEL].where(known)
    return pdf


def scorable(pdf):
    """Rows with enough input to score: in the legacy unit dimension, with feed data most of the day and a
    norm of at least ``MIN_NORM_DAYS`` days. The others get the level 数据不足 with the reason."""
    return ((pdf["in_legacy"]) & (pdf["hours_with_data"] >= contract.MIN_HOURS)
            & (pdf["norm_days"] >= contract.MIN_NORM_DAYS))


def insufficiency(row) -> str:
    """Why a row cannot be scored, in Chinese (empty when it can)."""
    if not row["in_legacy"]:
        return "该单元出现在实时数据中，但不在所政管理的大队名录(ZJ_FQFQ)中"
    if not row["in_feeds"] or row["hours_with_data"] == 0:
        return "当天无任何设备数据(设备缺失或数据中断)"
    if row["hours_with_data"] < contract.MIN_HOURS:
        return f"当天仅 {int(row['hours_with_data'])}/24 小时有数据"
    if row["norm_days"] < contract.MIN_NORM_DAYS:
        return f"历史数据仅 {int(row['norm_days'])} 天，不足 {contract.MIN_NORM_DAYS} 天，无法确定本单元常态"
    return ""
