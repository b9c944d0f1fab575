"""
### Gold build (dbt)

Builds the gold marts with dbt (dbt-spark, Delta) through Cosmos: one Airflow task per model,
running `dbt build` on it (the model, then its data tests and unit tests). Scheduled on the silver Asset that
`legacy_ingest` publishes; the gold Great Expectations gate must pass before the gold Asset is
published. A failed model or dbt data test (every gold check has severity error: census reconciles
with silver, rates in [0, 1], daily series without gaps) fails its task, so `gate_gold` (trigger rule
all_success) never runs and the gold Asset is not published; a failed `fail` expectation of the gold
suite (`expectations/gold.yaml`) fails `gate_gold` itself, with the same effect. dbt docs are
generated after publication under `var/dbt/docs`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import dag, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import InvocationMode, LoadMode, TestBehavior

from smartrehab.assets import GOLD_MARTS, SILVER_LEGACY

REPO = Path(__file__).resolve().parent.parent
DBT_DIR = REPO / "dbt"
DEFAULT_ARGS = {"owner": "data-platform", "retries": 1, "retry_delay": timedelta(minutes=2)}


@dag(
    dag_id="gold_build",
    schedule=[SILVER_LEGACY],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["dbt", "gold", "smartrehab"],
    doc_md=__doc__,
)
def gold_build():
    @task
    def start_spark() -> str:
        """Bring up the Spark session (and SPARK_CONF_DIR) that dbt's session adapter reuses."""
        from smartrehab.settings import get_settings
        from smartrehab.spark import get_spark

        return get_spark("dbt", get_settings()).version

    dbt = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(dbt_project_path=DBT_DIR, manifest_path=DBT_DIR / "target" / "manifest.json"),
        profile_config=ProfileConfig(profile_name="smartrehab", target_name="embedded",
                                     profiles_yml_filepath=DBT_DIR / "profiles.yml"),
        execution_config=ExecutionConfig(invocation_mode=InvocationMode.DBT_RUNNER),
        # One task per model running `dbt build` on it: the model, then its data and unit tests.
        # A test over several models (relationships, census reconciliation) gets a task of its
        # own after all of them; inside one model's task it would run before its other parents exist.
        render_config=RenderConfig(load_method=LoadMode.DBT_MANIFEST, test_behavior=TestBehavior.BUILD,
                                   should_detach_multiple_parents_tests=True),
        operator_args={"install_deps": False},
    )

    @task(outlets=[GOLD_MARTS], trigger_rule="all_success")
    def gate_gold() -> dict:
        from smartrehab import pipeline
        from smartrehab.settings import get_settings

        return pipeline.quality_gate(get_settings(), "gold")

    @task
    def dbt_docs() -> dict:
        from smartrehab import pipeline
        from smartrehab.settings import get_settings

        return pipeline.dbt_docs(get_settings())

    start_spark() >> dbt >> gate_gold() >> dbt_docs()


gold_build()
