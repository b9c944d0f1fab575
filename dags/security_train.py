"""
### Security situation: weekly training

Builds the unit-day feature frame from the live feeds' hourly aggregates (`silver.feed_unit_hourly`)
and the legacy incident register (`silver.incident`), fits the candidates (gradient boosting,
regularised logistic regression, calibrated) for "an incident in the unit within 7 days" with an
isolation forest of the day against the unit's own norm, backtests on the latest days against the
duty officer's baseline (yesterday's alarm count) and logs everything to the MLflow experiment
`security_situation`. The champion / challenger rule is the relapse model's (`ml/common/registry.py`).
Publishes the model Asset, which the scoring DAG reads.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task
from airflow.timetables.trigger import CronTriggerTimetable

from smartrehab.assets import FEED_UNIT_HOURLY, SECURITY_MODEL, SILVER_LEGACY

DEFAULT_ARGS = {"owner": "data-science", "retries": 1, "retry_delay": timedelta(minutes=5)}


@dag(
    dag_id="security_train",
    schedule=CronTriggerTimetable("30 2 * * 1", timezone="Asia/Shanghai"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["ml", "mlflow", "security_situation", "smartrehab"],
    doc_md=__doc__,
)
def security_train():
    @task(inlets=[FEED_UNIT_HOURLY, SILVER_LEGACY], outlets=[SECURITY_MODEL])
    def train() -> dict:
        from smartrehab import pipeline
        from smartrehab.settings import get_settings

        return pipeline.train_security_model(get_settings())

    train()


security_train()
