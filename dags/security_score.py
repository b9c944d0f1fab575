"""
### Security situation: scoring

Loads `models:/security_situation@champion`, refuses it if its signature does not match the feature
contract, and scores every unit and feed day into `gold.security_situation_score` (0-100, level
红/橙/黄/蓝, drivers in Chinese, freshness of the inputs; 数据不足 with the reason where the inputs do
not allow a score); the command centre's per-centre picture goes to `gold.security_situation_current`.
Runs every morning at 06:30 and whenever the feeds' hourly aggregates (every 15 minutes) or the model
Asset are updated; the tables pass the gold gate before the score Asset is published.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from smartrehab.assets import FEED_UNIT_HOURLY, SECURITY_MODEL, SECURITY_SCORES

DEFAULT_ARGS = {"owner": "data-science", "retries": 1, "retry_delay": timedelta(minutes=2)}


@dag(
    dag_id="security_score",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("30 6 * * *", timezone="Asia/Shanghai"),
                                 assets=(FEED_UNIT_HOURLY | SECURITY_MODEL)),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["ml", "mlflow", "gold", "security_situation", "smartrehab"],
    doc_md=__doc__,
)
def security_score():
    @task(inlets=[FEED_UNIT_HOURLY, SECURITY_MODEL])
    def score() -> dict:
        from smartrehab import pipeline
        from smartrehab.settings import get_settings

        return pipeline.score_security_situation(get_settings())

    @task(outlets=[SECURITY_SCORES])
    def gate(scored: dict) -> dict:
        from smartrehab import pipeline
        from smartrehab.settings import get_settings

        return pipeline.quality_gate(get_settings(), "gold")

    gate(score())


security_score()
