"""The security-situation model end to end on the test lake: six weeks of live feeds from the legacy
world, ingested as feeds_ingest does (bronze, silver, hourly aggregates); features without leakage;
training with its backtest in a registry of its own; scoring with levels, drivers and 数据不足 rows.

Scores go to tables of this module, so ``gold.security_situation_*`` of the pipeline is untouched.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pandas as pd
import pytest
from pyspark.sql import functions as F

from ml.common import registry
from ml.security_situation import contract, features, score, train

pytestmark = [pytest.mark.spark]

FEED_DAYS = 42
SCORES, CURRENT = "gold.test_security_score", "gold.test_security_current"
LEAK, VARIANT = "leak_security", "variant_security"


@pytest.fixture(scope="module")
def feeds_loaded(legacy_loaded, spark, settings, as_of_day, reset_feeds):
    from smartrehab.feeds.contracts import CST
    from smartrehab.feeds.persons import legacy_persons
    from smartrehab.feeds.simulator import simulate
    from spark_jobs.feeds import hourly, silver, stream

    reset_feeds()
    end = datetime.combine(as_of_day + timedelta(days=2), datetime.min.time(), tzinfo=CST)
    manifest = simulate(end - timedelta(days=FEED_DAYS), end, settings=settings,
                        persons=legacy_persons(settings, as_of_day, 1), batch_minutes=360)
    stream.run(spark, settings, available_now=True)
    silver.run(spark, settings)
    hourly.run(spark, settings)
    return manifest


@pytest.fixture(scope="module")
def own_registry(settings, tmp_path_factory):
    db = tmp_path_factory.mktemp("mlflow-security") / "mlflow.db"
    return dataclasses.replace(settings, mlflow_tracking_uri=f"sqlite:///{db}")


def _copy_sources(spark, schema):
    spark.sql(f"drop database if exists {schema} cascade")
    spark.sql(f"create database {schema}")
    for t in features.SOURCE_TABLES:
        spark.table(f"silver.{t}").write.format("delta").saveAsTable(f"{schema}.{t}")


def _pdf(spark, silver="silver"):
    return features.to_pandas(features.build(spark, silver), features.incidents_known_until(spark))


def test_every_unit_of_the_legacy_world_has_feed_data_and_incidents_land_in_units(feeds_loaded, spark):
    pdf = _pdf(spark)
    assert pdf["score_date"].nunique() == FEED_DAYS
    units = pdf[["centre", "unit", "in_legacy", "in_feeds"]].drop_duplicates()
    assert units["in_legacy"].all() and units["in_feeds"].all(), units
    located = spark.table("silver.incident").filter("is_current").filter(
        F.col("location").rlike("^[A-Z]{2}[0-9]{2}-D[0-9]{2}$")).count()
    assert located > 0
    assert pdf[contract.LABEL].dropna().nunique() == 2


def test_features_see_nothing_after_the_day(feeds_loaded, spark):
    before = _pdf(spark)
    cut = sorted(before["score_date"].unique())[FEED_DAYS // 2]
    _copy_sources(spark, LEAK)
    later = F.to_date("hour") > F.lit(cut)
    hourly = spark.table(f"{LEAK}.feed_unit_hourly")
    numeric = [f.name for f in hourly.schema.fields if f.dataType.typeName() in ("integer", "long", "double")]
    changed = hourly.select(*[(F.when(later, F.col(c) * 3 + 7).otherwise(F.col(c))).cast(hourly.schema[c].dataType)
                              .alias(c) if c in numeric else F.col(c) for c in hourly.columns])
    changed.localCheckpoint(eager=True).write.format("delta").mode("overwrite").saveAsTable(f"{LEAK}.feed_unit_hourly")
    inc = spark.table(f"{LEAK}.incident")
    future = (inc.filter(F.col("occurred_at").isNotNull()).limit(20)
              # All after the cut (a shift by a fixed span would move old incidents to before it).
              .withColumn("occurred_at", F.expr(f"timestamp'{cut} 00:00:00' + interval 36 hours"))
              .withColumn("incident_id", F.concat(F.col("incident_id"), F.lit("-future"))))
    future.write.format("delta").mode("append").saveAsTable(f"{LEAK}.incident")
    after = _pdf(spark, LEAK)
    cols = [c for c in contract.COLUMNS if c != contract.LABEL]
    upto = before["score_date"] <= cut
    pd.testing.assert_frame_equal(before.loc[upto, cols].reset_index(drop=True),
                                  after.loc[after["score_date"] <= cut, cols].reset_index(drop=True))
    # The perturbation is there to be seen: the days after the cut differ.
    assert not before.loc[~upto, "alarms_1d"].reset_index(drop=True).equals(
        after.loc[after["score_date"] > cut, "alarms_1d"].reset_index(drop=True))
    spark.sql(f"drop database if exists {LEAK} cascade")


@pytest.fixture(scope="module")
def trained(feeds_loaded, spark, own_registry):
    return train.train(spark, own_registry)


def test_training_backtests_against_the_duty_officers_baseline(trained, own_registry):
    from mlflow import MlflowClient

    b = trained.backtest
    assert trained.alias == "champion" and trained.reason == "no champion yet"
    assert b["n"] == trained.n_test > 0 and 0 <= b["red_orange_recall"] <= 1
    assert 0.5 < trained.roc_auc < 0.99, trained.roc_auc     # learns something, never perfect
    run = MlflowClient(tracking_uri=own_registry.tracking_uri).get_run(trained.run_id)
    assert {"test_roc_auc", "baseline_roc_auc", "backtest_red_orange_recall"} <= set(run.data.metrics)
    assert run.data.params["levels"].startswith('[["红", 97.0]')


@pytest.fixture(scope="module")
def scored(trained, spark, own_registry):
    for t in (SCORES, CURRENT):
        spark.sql(f"drop table if exists {t}")
    first = score.score(spark, own_registry, scores_table=SCORES, current_table=CURRENT)
    second = score.score(spark, own_registry, scores_table=SCORES, current_table=CURRENT)
    return first, second


def test_every_unit_day_is_scored_once_with_level_and_drivers(scored, spark):
    first, second = scored
    assert second["inserted"] == 0 and second["updated"] == 0
    rows = spark.table(SCORES).toPandas()
    assert len(rows) == first["scored"] == rows[contract.KEYS].drop_duplicates().shape[0]
    ok = rows[rows["level"] != contract.INSUFFICIENT]
    assert len(ok) > 0 and ok["score"].between(0, 100).all()
    assert (ok["level"] == [contract.level(v) for v in ok["score"]]).all()
    assert ok["drivers_zh"].str.len().gt(0).all()
    # The first week has no 30-day norm yet: not a fake 蓝.
    first_days = rows[rows["score_date"] < rows["score_date"].min() + timedelta(days=contract.MIN_NORM_DAYS)]
    assert (first_days["level"] == contract.INSUFFICIENT).all()
    assert first_days["drivers_zh"].str.contains("历史数据仅").all()
    cur = spark.table(CURRENT).toPandas()
    assert set(cur["centre"]) == set(rows["centre"])
    assert (cur["units"] == cur[["units_red", "units_orange", "units_yellow", "units_blue",
                                 "units_insufficient"]].sum(axis=1)).all()


def test_stale_feeds_unknown_units_and_no_incidents_are_visible(scored, spark, own_registry):
    """A unit silent half a day, a unit the legacy dimension does not know, and no incidents at all."""
    _copy_sources(spark, VARIANT)
    hourly = spark.table(f"{VARIANT}.feed_unit_hourly")
    last = hourly.agg(F.max(F.to_date("hour"))).first()[0] - timedelta(days=1)
    silent = (F.col("centre") == "BJ01") & (F.col("unit") == "D01") & (F.to_date("hour") == F.lit(last)) \
        & (F.hour("hour") < 12)
    ghost = hourly.filter((F.col("centre") == "BJ01") & (F.col("unit") == "D02")).withColumn("unit", F.lit("D99"))
    out = hourly.filter(~silent).unionByName(ghost).localCheckpoint(eager=True)
    out.write.format("delta").mode("overwrite").saveAsTable(f"{VARIANT}.feed_unit_hourly")
    spark.sql(f"delete from {VARIANT}.incident")
    pdf = features.to_pandas(features.build(spark, VARIANT), features.incidents_known_until(spark))
    champion, version, _ = registry.champion(own_registry, contract.MODEL, contract.FEATURE_NAMES)
    rows = score.score_frame(pdf, champion, version)
    stale = rows[(rows["unit"] == "D01") & (rows["centre"] == "BJ01") & (rows["score_date"] == last)].iloc[0]
    # The afternoon's hours are left (a tiny test unit may have had quiet hours then too).
    left = hourly.filter((F.col("centre") == "BJ01") & (F.col("unit") == "D01") & (F.to_date("hour") == F.lit(last))
                         & (F.hour("hour") >= 12)).count()
    assert 0 < left <= 12 < contract.MIN_HOURS
    assert stale["level"] == contract.INSUFFICIENT and f"仅 {left}/24 小时" in stale["drivers_zh"]
    assert stale["freshness_zh"] == f"数据不全：{left}/24小时有数据" and not stale["inputs_complete"]
    ghosts = rows[rows["unit"] == "D99"]
    assert len(ghosts) == FEED_DAYS and (ghosts["level"] == contract.INSUFFICIENT).all()
    assert ghosts["drivers_zh"].str.contains("不在所政管理的大队名录").all()
    assert (pdf["incidents_90d"] == 0).all() and (pdf[contract.LABEL].dropna() == 0).all()
    assert (rows.loc[rows["level"] != contract.INSUFFICIENT, "score"].notna()).all()
    spark.sql(f"drop database if exists {VARIANT} cascade")


def test_a_champion_for_other_features_is_refused(scored, spark, own_registry):
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"alarms_1d": [0.0, 1, 2, 3]})
    registry.mlflow_for(own_registry, contract.MODEL)
    with mlflow.start_run(run_name="an older feature set"):
        info = mlflow.sklearn.log_model(LogisticRegression().fit(X, [0, 0, 1, 1]), name="model",
                                        registered_model_name=contract.MODEL.name,
                                        signature=infer_signature(X, [0.1, 0.2, 0.3, 0.4]),
                                        serialization_format="cloudpickle")
    MlflowClient(tracking_uri=own_registry.tracking_uri).set_registered_model_alias(
        contract.MODEL.name, "champion", str(info.registered_model_version))
    before = spark.table(SCORES).count()
    with pytest.raises(registry.SignatureMismatch, match="missing .*night_alarms_1d"):
        score.score(spark, own_registry, scores_table=SCORES, current_table=CURRENT)
    assert spark.table(SCORES).count() == before
