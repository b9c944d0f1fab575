"""gold_build publishes the gold Asset only when every dbt model, dbt test and gold expectation passed."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def gold_dag(settings):
    from smartrehab import services
    from smartrehab.cli import dbt_parse

    os.environ.update(services.airflow_env(settings))
    dbt_parse(settings)  # the manifest Cosmos renders from must include the current models and tests
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(settings.repo_root / "dags" / "gold_build.py"))
    assert bag.import_errors == {}
    return bag.dags["gold_build"]


def test_only_the_gate_publishes_and_only_after_every_dbt_task(gold_dag):
    from smartrehab.assets import GOLD_MARTS

    publishers = [t for t in gold_dag.tasks if t.outlets]
    assert [t.task_id for t in publishers] == ["gate_gold"]
    assert [o.uri for o in publishers[0].outlets] == [GOLD_MARTS.uri]
    gate = gold_dag.get_task("gate_gold")
    assert gate.trigger_rule == "all_success"
    dbt_tasks = {t.task_id for t in gold_dag.tasks if t.task_id.startswith("dbt.")}
    upstream = gate.get_flat_relative_ids(upstream=True)
    assert dbt_tasks and dbt_tasks <= upstream
    # every gold mart is a task before the gate; each runs `dbt build` on its model, so its data tests
    # (and, by dbt's eager indirect selection, the census reconciliation) fail that task
    for mart in ("fct_safety_liuwu", "fct_abstinence_rate", "fct_daily_population", "fct_assessment_areas"):
        assert any(t.startswith(f"dbt.{mart}") for t in dbt_tasks), mart


def test_docs_are_generated_after_publication(gold_dag):
    docs = gold_dag.get_task("dbt_docs")
    assert "gate_gold" in docs.upstream_task_ids
