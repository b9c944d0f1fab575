"""
### ML scores

Trains the relapse-risk model on the latest silver data, tracks and registers it in MLflow
(alias `champion`), then scores everyone in a centre into `gold.relapse_risk_score`. Scheduled on
the gold Asset; the score table passes the gold gate before its Asset is published.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from smartrehab.assets import GOLD_MARTS, RELAPSE_SCORES

DEFAULT_ARGS = {"owner": "data-science", "retries": 1, "retry_delay": timedelta(minutes=2)}


@dag(
    dag_id="ml_scores",
    schedule=[GOLD_MARTS],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["ml", "mlflow", "gold", "smartrehab"],
    doc_md=__doc__,
)
def ml_scores():
    @task
    def train() -> dict:
        from smartrehab import pipeline
        from smartrehab.settings import get_settings

        return pipeline.train_relapse_model(get_settings())

    @task
    def score(trained: dict) -> dict:
        from smartrehab import pipeline
        from smartrehab.settings import get_settings

        return pipeline.score_relapse_risk(get_settings())

    @task(outlets=[RELAPSE_SCORES])
    def gate(scored: dict) -> dict:
        from smartrehab import pipeline
        from smartrehab.settings import get_settings

        return pipeline.quality_gate(get_settings(), "gold")

    gate(score(train()))


ml_scores()
