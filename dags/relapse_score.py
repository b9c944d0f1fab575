"""
### Relapse risk: daily scoring

Loads `models:/relapse_risk@champion`, refuses it if its signature does not match the feature
contract, and scores everyone in a centre (today, and at each comprehensive assessment) into
`gold.relapse_risk_score` with band and top factors; PSI drift of features and score goes to
`gold.relapse_risk_drift` and alerts above 0.25. Runs every morning and whenever the gold marts or
the model Asset are updated; the score table passes the gold gate before its Asset is published.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from smartrehab.assets import GOLD_MARTS, RELAPSE_MODEL, RELAPSE_SCORES

DEFAULT_ARGS = {"owner": "data-science", "retries": 1, "retry_delay": timedelta(minutes=2)}


@dag(
    dag_id="relapse_score",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 6 * * *", timezone="Asia/Shanghai"),
                                 assets=(GOLD_MARTS | RELAPSE_MODEL)),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["ml", "mlflow", "gold", "relapse_risk", "smartrehab"],
    doc_md=__doc__,
)
def relapse_score():
    @task(inlets=[GOLD_MARTS, RELAPSE_MODEL])
    def score() -> dict:
        from smartrehab import pipeline
        from smartrehab.settings import get_settings

        return pipeline.score_relapse_risk(get_settings())

    @task(outlets=[RELAPSE_SCORES])
    def gate(scored: dict) -> dict:
        from smartrehab import pipeline
        from smartrehab.settings import get_settings

        return pipeline.quality_gate(get_settings(), "gold")

    gate(score())


relapse_score()
