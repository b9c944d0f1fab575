"""The relapse-risk model end to end on the test lake: features without leakage, the champion /
challenger rule in a registry of its own, scoring into a score table, and the refusals.

The registry is a fresh MLflow store (so the rule starts from "no champion"), and scores go to
tables of this module, so the pipeline test's registry and ``gold.relapse_risk_score`` are untouched.
"""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ml.common import registry
from ml.relapse_risk import contract, explain, features, model, score, train

pytestmark = [pytest.mark.spark]

SCORES = "gold.test_relapse_risk_score"
DRIFT = "gold.test_relapse_risk_drift"
LEAK_SILVER, LEAK_GOLD = "leak_silver", "leak_gold_staging"
# Tables whose rows are facts fixed before any occasion (read in their current version): copied as they are.
FIXED = {"person", "admission", "zone_placement"}
SHIFT_DAYS = 20 * 366


@pytest.fixture(scope="module")
def outcomes_built(legacy_loaded, settings):
    from smartrehab.pipeline import dbt_build

    dbt_build(settings, select="+int_release_outcomes")


@pytest.fixture(scope="module")
def own_registry(settings, tmp_path_factory):
    db = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    return dataclasses.replace(settings, mlflow_tracking_uri=f"sqlite:///{db}")


def _frame(spark, occasions, silver="silver", gold_staging="gold_staging") -> pd.DataFrame:
    pdf = features.build(spark, occasions, silver, gold_staging).toPandas()
    return pdf.sort_values(["admission_id", "as_of_date", "occasion"]).reset_index(drop=True)


def _future_copy(df):
    """Every row again, as a later version dated ``SHIFT_DAYS`` later with every number changed."""
    cols = []
    for f in df.schema.fields:
        c = F.col(f"`{f.name}`")
        if isinstance(f.dataType, T.DateType):
            c = F.date_add(c, SHIFT_DAYS)
        elif isinstance(f.dataType, (T.TimestampType, T.TimestampNTZType)):
            c = c + F.expr(f"interval {SHIFT_DAYS} days")
        elif isinstance(f.dataType, T.NumericType):
            c = (c + 7).cast(f.dataType)
        elif isinstance(f.dataType, T.StringType) and f.name.endswith(("_result", "_flag", "result")):
            c = F.lit("2")
        cols.append(c.alias(f.name))
    return df.select(*cols)


@pytest.fixture(scope="module")
def perturbed_lake(outcomes_built, spark):
    """Copies of the feature sources in which everything after every occasion is different: later
    versions of every record, new records in the future, all with other values."""
    for db in (LEAK_SILVER, LEAK_GOLD):
        spark.sql(f"drop database if exists {db} cascade")
        spark.sql(f"create database {db}")
    for t in features.SOURCE_TABLES:
        df = spark.table(f"silver.{t}")
        out = df if t in FIXED else df.unionByName(_future_copy(df))
        out.write.format("delta").saveAsTable(f"{LEAK_SILVER}.{t}")
    spark.table("gold_staging.int_release_outcomes").write.format("delta").saveAsTable(
        f"{LEAK_GOLD}.int_release_outcomes")
    yield
    for db in (LEAK_SILVER, LEAK_GOLD):
        spark.sql(f"drop database if exists {db} cascade")


def _occasions(spark):
    as_of = features.data_as_of(spark)
    return features.training_occasions(spark).unionByName(features.scoring_occasions(spark, as_of)).cache()


def test_features_see_nothing_after_the_as_of_day(perturbed_lake, spark):
    occasions = _occasions(spark)
    before = _frame(spark, occasions)
    after = _frame(spark, occasions, LEAK_SILVER, LEAK_GOLD)
    assert len(before) == occasions.count() > 50
    pd.testing.assert_frame_equal(before[contract.COLUMNS], after[contract.COLUMNS], check_exact=False)


def test_the_perturbation_would_be_seen_by_a_later_as_of_day(perturbed_lake, spark):
    # The same occasions moved past the shifted records: now the later versions count, so the copies
    # must give other features (otherwise the test above proves nothing).
    late = _occasions(spark).withColumn("as_of_date", F.date_add("as_of_date", SHIFT_DAYS + 400))
    before = _frame(spark, late)
    after = _frame(spark, late, LEAK_SILVER, LEAK_GOLD)
    changed = [f for f in contract.NUMERIC if not before[f].fillna(-1).equals(after[f].fillna(-1))]
    assert len(changed) >= 10, changed


def test_feature_frame_follows_the_contract(outcomes_built, spark):
    frame = _frame(spark, _occasions(spark))
    assert list(frame.columns) == contract.COLUMNS
    pre = frame[frame["occasion"] == "pre_release"]
    assert pre[contract.LABEL].isin([0, 1]).sum() >= train.MIN_LABELLED
    assert frame.loc[frame["released_on"].isna(), contract.LABEL].isna().all()
    past = frame[(frame["occasion"] == "assessment") & frame["released_on"].notna()]
    assert len(past) > 0 and (past["as_of_date"] < past["released_on"]).all()
    # Each numeric feature has values somewhere (every source table is loaded in the tests).
    assert not [f for f in contract.NUMERIC if frame[f].isna().all()]
    assert set(frame["main_drug_class"]) <= {"阿片类", "合成毒品(苯丙胺类/氯胺酮)", "大麻", "可卡因", "新精神活性物质",
                                             "其他", "未知"}


def test_missing_source_table_is_named(outcomes_built, spark):
    spark.sql("drop database if exists half_silver cascade")
    spark.sql("create database half_silver")
    try:
        spark.table("silver.admission").write.format("delta").saveAsTable("half_silver.admission")
        with pytest.raises(features.FeatureError, match=r"half_silver\.scl90_result"):
            features.build(spark, features.training_occasions(spark, "half_silver"), "half_silver")
    finally:
        spark.sql("drop database if exists half_silver cascade")


@pytest.fixture(scope="module")
def trained_twice(outcomes_built, spark, own_registry):
    first = train.train(spark, own_registry)
    second = train.train(spark, own_registry)
    return first, second


def test_first_version_is_champion_and_an_equal_one_only_challenger(trained_twice, own_registry):
    from mlflow import MlflowClient

    first, second = trained_twice
    assert (first.alias, first.reason) == ("champion", "no champion yet")
    assert second.alias == "challenger" and "does not beat the champion" in second.reason
    client = MlflowClient(tracking_uri=own_registry.tracking_uri)
    assert str(client.get_model_version_by_alias(contract.MODEL.name, "champion").version) == first.model_version
    assert str(client.get_model_version_by_alias(contract.MODEL.name, "challenger").version) == second.model_version
    tags = client.get_model_version(contract.MODEL.name, second.model_version).tags
    assert tags["alias_decision"] == "challenger" and "gain +0.0000" in tags["alias_reason"]


def test_run_logs_metrics_report_and_signature(trained_twice, own_registry):
    from mlflow import MlflowClient
    from mlflow.models import get_model_info

    first, _ = trained_twice
    client = MlflowClient(tracking_uri=own_registry.tracking_uri)
    run = client.get_run(first.run_id)
    for m in ("test_roc_auc", "test_pr_auc", "test_brier", "test_ece", "n_train", "fairness_flags"):
        assert m in run.data.metrics, m
    assert 0.5 < run.data.metrics["test_roc_auc"] < 0.99
    assert any(k.startswith("auc_gain_vs_demographics") for k in run.data.metrics)
    assert "fairness_flagged" in run.data.tags
    report = {a.path for a in client.list_artifacts(first.run_id, "report")}
    assert {f"report/{n}" for n in ("comparison.csv", "calibration.csv", "fairness.csv", "drift_reference.json",
                                    "calibration.png")} <= report
    info = get_model_info(f"models:/{contract.MODEL.name}/{first.model_version}")
    assert info.signature.inputs.input_names() == contract.FEATURE_NAMES


@pytest.fixture(scope="module")
def scored(trained_twice, spark, own_registry):
    spark.sql(f"drop table if exists {SCORES}")
    spark.sql(f"drop table if exists {DRIFT}")
    first = score.score(spark, own_registry, scores_table=SCORES, drift_table=DRIFT)
    again = score.score(spark, own_registry, scores_table=SCORES, drift_table=DRIFT)
    return first, again


def test_scores_cover_everyone_in_a_centre_with_band_and_factors(scored, spark, trained_twice):
    champion, _ = trained_twice
    first, again = scored
    table = spark.table(SCORES)
    assert table.columns == ["person_pk", "admission_id", "centre", "as_of_date", "occasion", "score", "risk_band",
                             "top_factors_zh", "top_factors", "model_name", "model_version", "run_id", "scored_at"]
    as_of = features.data_as_of(spark)
    in_centre = (spark.table("silver.admission").filter("is_current")
                 .filter((F.col("admitted_on") <= as_of) & (F.col("released_on").isNull() | (F.col("released_on") > as_of)))
                 .count())
    current = table.filter(F.col("occasion") == "current")
    assert current.count() == in_centre > 0
    assert current.agg(F.countDistinct("as_of_date")).first()[0] == 1
    rows = table.toPandas()
    assert rows["score"].between(0, 1).all()
    assert (rows["risk_band"] == rows["score"].map(model.band)).all()
    assert set(rows["model_version"]) == {champion.model_version} and set(rows["run_id"]) == {champion.run_id}
    factors = rows["top_factors"].map(json.loads)
    assert factors.map(len).between(0, 3).all() and (factors.map(len) > 0).mean() > 0.9
    with_text = rows[factors.map(len) > 0]
    assert (with_text["top_factors_zh"] == factors[factors.map(len) > 0].map(
        lambda fs: "；".join(f["text"] for f in fs))).all()
    labels = set(contract.LABELS_ZH.values())
    assert all(any(f["text"].startswith(lbl) for lbl in labels) for fs in factors for f in fs)
    # Scoring the same day again changes nothing.
    assert (again["inserted"], again["updated"]) == (0, 0) and first["inserted"] == len(rows)


def test_drift_is_recorded_for_every_feature_and_the_score(scored, spark):
    drift_rows = spark.table(DRIFT).toPandas()
    assert set(contract.NUMERIC) | {"score"} <= set(drift_rows["column_name"])
    assert (drift_rows["psi"] >= 0).all()
    # The reference is the population in a centre when the model was trained: on the same data
    # today's population is that population, so nothing has drifted.
    assert drift_rows["psi"].max() < 1e-6 and not drift_rows["alert"].any()


def test_person_with_no_history_is_scored_from_what_is_known(scored, spark, own_registry):
    # Everyone in a centre seen on the day of admission: hardly anything recorded yet but who they are.
    first_day = (spark.table("silver.admission").filter("is_current and released_on is null")
                 .select("admission_id", F.col("admitted_on").alias("as_of_date"), F.lit("current").alias("occasion")))
    frame = features.build(spark, first_day).toPandas()
    assert len(frame) > 0
    assert frame["monthly_score_avg_6m"].isna().all() and frame["education_hours_per_month"].isna().all()
    champion, _, _ = registry.champion(own_registry, contract.MODEL, contract.FEATURE_NAMES)
    X = frame[contract.FEATURE_NAMES]
    p = champion.predict_proba(X)[:, 1]
    assert ((p > 0) & (p < 1)).all()
    for i, factors in enumerate(explain.top_factors(champion, X)):
        for f in factors:
            value = X.iloc[i][f["feature"]]
            if pd.isna(value):
                assert f["text"] == f"{f['label_zh']}: 无记录"


def test_signature_mismatch_is_refused_and_nothing_written(scored, spark, own_registry):
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    client = MlflowClient(tracking_uri=own_registry.tracking_uri)
    old_champion = client.get_model_version_by_alias(contract.MODEL.name, "champion").version
    before = spark.table(SCORES).count()
    X = pd.DataFrame({"age_at_admission": [20.0, 30, 40, 50], "prior_admissions": [0.0, 1, 2, 3]})
    y = [0, 0, 1, 1]
    registry.mlflow_for(own_registry, contract.MODEL)
    with mlflow.start_run(run_name="an older feature set"):
        info = mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model",
                                        registered_model_name=contract.MODEL.name,
                                        signature=infer_signature(X, [0.1, 0.2, 0.3, 0.4]),
                                        serialization_format="cloudpickle")
    client.set_registered_model_alias(contract.MODEL.name, "champion", str(info.registered_model_version))
    with pytest.raises(registry.SignatureMismatch, match="missing .*craving_vas"):
        score.score(spark, own_registry, scores_table=SCORES, drift_table=DRIFT)
    assert spark.table(SCORES).count() == before
    # The next training replaces a champion that cannot score the current features.
    retrained = train.train(spark, own_registry)
    assert retrained.alias == "champion" and "cannot score the current features" in retrained.reason
    assert int(retrained.model_version) > int(old_champion)
