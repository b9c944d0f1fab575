"""The thin slice through every layer, run the way Airflow runs it (``dag.test()``):

legacy delivery -> legacy_ingest (bronze, silver, GE gates) -> gold_build (dbt via Cosmos, gold
gate) -> feeds_ingest (the demo's weeks of live feeds, as ``smartrehab generate`` simulates them) ->
relapse_train (MLflow model) -> relapse_score (score table) -> security_train -> security_score (unit-day
scores and the current situation) -> the SQL endpoint answers for the gold tables. The DAGs run in the order
of ``smartrehab run`` (``cli.PIPELINE``).
"""

from __future__ import annotations

import shutil
from datetime import date

import pytest
from pyspark.sql import functions as F

pytestmark = [pytest.mark.spark, pytest.mark.airflow, pytest.mark.services]

NEW_DAY = date(2026, 11, 22)


def _dag(settings, dag_id):
    from airflow.dag_processing.dagbag import DagBag

    from smartrehab.cli import dbt_parse

    if not (settings.dbt_dir / "target" / "manifest.json").exists():
        dbt_parse(settings)
    bag = DagBag(dag_folder=str(settings.repo_root / "dags"))
    assert bag.import_errors == {}
    return bag.dags[dag_id]


@pytest.fixture(scope="module")
def pipeline_ran(legacy_loaded, airflow_env, spark, settings, tmp_path_factory, as_of_day, reset_feeds):
    from smartrehab.catalog import load_catalog
    from smartrehab.cli import FEED_DAYS, PIPELINE, generate_feeds
    from smartrehab.generate.legacy import generate

    # A new delivery arrives: the ingest DAG must pick up exactly that one.
    scratch = tmp_path_factory.mktemp("landing")
    generate(load_catalog(settings.catalog_dir), scratch, settings.scale_factor, settings.seed, as_of_day, days=2,
             tables=settings.legacy_table_list)
    shutil.copytree(scratch / "legacy" / f"{NEW_DAY:%Y%m%d}", settings.landing_dir / "legacy" / f"{NEW_DAY:%Y%m%d}")
    # The feeds of the demo window, for the people and units of the world on its last day.
    reset_feeds()
    generate_feeds(settings, as_of_day, (NEW_DAY - as_of_day).days, FEED_DAYS)
    runs = {}
    for dag_id in PIPELINE:
        runs[dag_id] = _dag(settings, dag_id).test()
    return runs


def test_every_dag_succeeds(pipeline_ran):
    from smartrehab.cli import PIPELINE

    assert list(pipeline_ran) == PIPELINE
    for dag_id, run in pipeline_ran.items():
        assert "success" in str(run.state), (dag_id, run.state)


def test_ingest_dag_loaded_only_the_new_delivery(pipeline_ran, spark):
    from spark_jobs.legacy import ingest

    rec = spark.table(ingest.RECONCILIATION)
    days = {r["delivery_day"] for r in rec.select("delivery_day").distinct().collect()}
    assert NEW_DAY in days
    latest_load = rec.filter(F.col("delivery_day") == NEW_DAY).select("load_id").distinct().collect()
    assert len(latest_load) == 1
    assert rec.filter(F.col("load_id") == latest_load[0][0]).filter(F.col("delivery_day") != NEW_DAY).count() == 0
    # Only this pipeline's gates: other tests break gold on purpose to see a gate stop it.
    run = pipeline_ran["legacy_ingest"]
    started = run.start_date or run.logical_date
    results = spark.table("audit.quality_results").filter(F.col("checked_at") >= F.lit(started))
    assert results.filter(F.col("layer") == "silver").count() > 0
    assert results.filter((F.col("severity") == "fail") & ~F.col("success")).count() == 0


def test_census_equals_people_present(pipeline_ran, spark):
    gold = spark.table("gold.fct_daily_population")
    as_of = gold.agg(F.max("census_date")).first()[0]
    in_gold = gold.filter(F.col("census_date") == as_of).agg(F.sum("population")).first()[0]
    present = (spark.table("silver.zone_placement").filter("is_current")
               .filter((F.col("entered_on") <= as_of) & (F.col("left_on").isNull() | (F.col("left_on") > as_of)))
               .filter(F.col("zone").isin("01", "02", "03", "04"))
               .select("person_pk").distinct().count())
    assert in_gold == present > 0


def test_model_registered_and_scores_written(pipeline_ran, spark, settings):
    from mlflow import MlflowClient

    from ml.relapse_risk.features import data_as_of

    client = MlflowClient(tracking_uri=settings.tracking_uri)
    champion = client.get_model_version_by_alias("relapse_risk", "champion")
    run = client.get_run(champion.run_id)
    assert 0.0 <= run.data.metrics["test_roc_auc"] <= 1.0 and run.data.metrics["n_train"] > 0
    as_of = data_as_of(spark)
    scores = spark.table("gold.relapse_risk_score").filter(F.col("as_of_date") == as_of)
    current = scores.filter(F.col("occasion") == "current")
    in_centre = (spark.table("silver.admission").filter("is_current")
                 .filter((F.col("admitted_on") <= as_of) & (F.col("released_on").isNull() | (F.col("released_on") > as_of)))
                 .count())
    assert current.count() == in_centre > 0
    assert scores.filter((F.col("score") < 0) | (F.col("score") > 1)).count() == 0
    assert {r[0] for r in current.select("model_version").distinct().collect()} == {str(champion.version)}


def test_sql_endpoint_serves_gold(pipeline_ran, sql_endpoint, spark):
    from smartrehab.access import endpoint

    conn = endpoint.connect(sql_endpoint, "fenxi.01")  # an analyst of the directory, with their password
    cur = conn.cursor()
    cur.execute("refresh table gold.fct_daily_population")
    cur.execute("select sum(population), count(*) from gold.fct_daily_population")
    total, n = cur.fetchone()
    expected = spark.table("gold.fct_daily_population").agg(F.sum("population"), F.count("*")).first()
    assert (total, n) == (expected[0], expected[1]) and n > 0
    cur.execute("show tables in gold")
    assert {"fct_daily_population", "relapse_risk_score"} <= {r[1] for r in cur.fetchall()}
    conn.close()


def test_security_scores_for_every_unit_and_the_current_situation(pipeline_ran, spark):
    from ml.security_situation import contract, score

    scores = spark.table(score.SCORES_TABLE)
    last = spark.table("silver.feed_unit_hourly").agg(F.max(F.to_date("hour"))).first()[0]
    feed_centres = {r[0] for r in spark.table("silver.feed_unit_hourly").select("centre").distinct().collect()}
    units = {(r["centre"], r["unit"]) for r in spark.table("silver.zone_placement").filter("is_current")
             .filter(F.col("centre").isin(*feed_centres))
             .select("centre", F.substring_index("brigade", "-", -1).alias("unit")).distinct().collect()}
    today = scores.filter(F.col("score_date") == last).collect()
    assert {(r["centre"], r["unit"]) for r in today} >= units and units
    assert {r["level"] for r in today} <= {*(name for name, _ in contract.LEVELS), contract.INSUFFICIENT}
    assert all((r["score"] is None) == (r["level"] == contract.INSUFFICIENT) for r in today)
    current = spark.table(score.CURRENT_TABLE).collect()
    assert {r["centre"] for r in current} == {c for c, _ in units}
