"""
### Relapse risk: weekly training

Builds the pre-release feature frame from silver (and the 1-year outcomes of `gold_staging`),
fits the candidates (regularised logistic regression, gradient boosting), calibrates them, evaluates
on the newest release cohort against the bureau's baselines, checks fairness, and logs everything to
the MLflow experiment `relapse_risk`. The new version becomes `champion` only if it beats the
current champion on the same holdout (rule in `ml/common/registry.py`); otherwise it is
`challenger` with the reason in its tags. Publishes the model Asset, which the scoring DAG reads.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task
from airflow.timetables.trigger import CronTriggerTimetable

from smartrehab.assets import GOLD_MARTS, RELAPSE_MODEL, SILVER_LEGACY

DEFAULT_ARGS = {"owner": "data-science", "retries": 1, "retry_delay": timedelta(minutes=5)}


@dag(
    dag_id="relapse_train",
    schedule=CronTriggerTimetable("0 2 * * 1", timezone="Asia/Shanghai"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["ml", "mlflow", "relapse_risk", "smartrehab"],
    doc_md=__doc__,
)
def relapse_train():
    @task(inlets=[SILVER_LEGACY, GOLD_MARTS], outlets=[RELAPSE_MODEL])
    def train() -> dict:
        from smartrehab import pipeline
        from smartrehab.settings import get_settings

        return pipeline.train_relapse_model(get_settings())

    train()


relapse_train()
