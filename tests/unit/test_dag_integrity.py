"""Every DAG imports, and carries an owner, tags, retries and its documentation."""

from __future__ import annotations

import os
import re

import pytest

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def dagbag(settings):
    from smartrehab import services
    from smartrehab.cli import dbt_parse

    os.environ.update(services.airflow_env(settings))
    if not (settings.dbt_dir / "target" / "manifest.json").exists():
        dbt_parse(settings)
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(settings.repo_root / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) >= {"legacy_ingest", "gold_build", "relapse_train", "relapse_score", "exchange_daily",
                                   "exchange_monthly", "audit_ingest"}


def test_owner_tags_retries_docs(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags and "smartrehab" in dag.tags, dag_id
        assert dag.doc_md and len(dag.doc_md) > 80, dag_id
        for t in dag.tasks:
            assert t.owner and t.owner != "airflow", (dag_id, t.task_id)
            assert t.retries >= 1, (dag_id, t.task_id)


def test_dags_are_chained_by_assets(dagbag):
    from smartrehab.assets import GOLD_MARTS, RELAPSE_MODEL, SILVER_LEGACY

    producer = dagbag.dags["legacy_ingest"]
    outlets = {o.uri for t in producer.tasks for o in t.outlets}
    assert SILVER_LEGACY.uri in outlets
    gold = dagbag.dags["gold_build"]
    assert SILVER_LEGACY.uri in str(gold.timetable.asset_condition)
    score = dagbag.dags["relapse_score"]
    assert {GOLD_MARTS.uri, RELAPSE_MODEL.uri} <= set(re.findall(r"smartrehab://[\w/]+", str(score.timetable.asset_condition)))
    train_outlets = {o.uri for t in dagbag.dags["relapse_train"].tasks for o in t.outlets}
    assert RELAPSE_MODEL.uri in train_outlets
    assert "0 2 * * 1" in str(dagbag.dags["relapse_train"].timetable.summary)
    # dbt models are rendered as tasks by Cosmos, with their tests after each model.
    assert any(t.task_id.startswith("dbt.fct_daily_population") for t in gold.tasks)


def test_security_dags_are_chained_by_the_feed_and_model_assets(dagbag):
    from smartrehab.assets import FEED_UNIT_HOURLY, SECURITY_MODEL, SECURITY_SCORES

    score = dagbag.dags["security_score"]
    assert {FEED_UNIT_HOURLY.uri, SECURITY_MODEL.uri} <= set(
        re.findall(r"smartrehab://[\w/]+", str(score.timetable.asset_condition)))
    assert SECURITY_SCORES.uri in {o.uri for t in score.tasks for o in t.outlets}
    assert SECURITY_MODEL.uri in {o.uri for t in dagbag.dags["security_train"].tasks for o in t.outlets}
    hourly = {o.uri for t in dagbag.dags["feeds_ingest"].tasks for o in t.outlets}
    assert FEED_UNIT_HOURLY.uri in hourly


def test_exchange_dags_run_on_gold_and_produce_the_exchange_asset(dagbag):
    from smartrehab.assets import EXCHANGE_PACKAGES, GOLD_MARTS

    expected = {"exchange_daily": ({"export_population_daily"}, "0 7 * * *", r"^\d{4}-\d{2}-\d{2}$"),
                "exchange_monthly": ({"export_kpi_monthly", "export_person_events", "export_incident_report"},
                                     "30 7 6 * *", r"^\d{4}-\d{2}$")}
    for dag_id, (tasks, cron, pattern) in expected.items():
        dag = dagbag.dags[dag_id]
        assert {t.task_id for t in dag.tasks} == tasks, dag_id
        # on the gold Asset, and on a clock in Beijing time as a safety net
        assert GOLD_MARTS.uri in str(dag.timetable.asset_condition), dag_id
        assert cron in str(dag.timetable.summary), (dag_id, dag.timetable.summary)
        for t in dag.tasks:
            assert EXCHANGE_PACKAGES.uri in {o.uri for o in t.outlets}, (dag_id, t.task_id)
            assert GOLD_MARTS.uri in {i.uri for i in t.inlets}, (dag_id, t.task_id)
        assert dag.max_active_runs == 1 and not dag.catchup, dag_id  # one export at a time, no replay of the past
        # backfill: any past period by the `period` param; `final` false sends an open period as provisional
        params = dag.params.dump()
        assert params["period"] is None and params["final"] is True, dag_id
        assert dag.params.get_param("period").schema["pattern"] == pattern, dag_id
