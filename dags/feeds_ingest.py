"""
### Feeds ingest (landing zone → bronze → silver → unit-hour aggregates → alerts)

Every 15 minutes, incrementally, four steps, each publishing its Asset:

1. **bronze** (`smartrehab://bronze/feed_events`): Spark Structured Streaming with an **availableNow** trigger
   picks up the live-feed files that landed since the last run (`<landing>/feeds/<feed>/<YYYYMMDD>/*.jsonl`,
   nine contracted feeds). Each line is checked against its contract (`contracts/`); valid events are upgraded
   to the latest payload shape and MERGEd insert-if-absent on `event_id` into `bronze.feed_events`; rejected
   lines go to `quarantine.feed_events` with their reason.
2. **silver** (`smartrehab://silver/feed_events`): the bronze rows added since the last run (a Delta stream
   with its own checkpoint) are conformed (typed payload per feed), joined to the person version valid at the
   event time (`silver.person`, SCD2) and to `silver.dim_location`, and MERGEd into `silver.feed_events`;
   `silver.feed_devices` keeps each device's last event.
3. **aggregates** (`smartrehab://silver/feed_unit_hourly`): the (centre, unit, hour) rows touched by the new
   silver rows are recomputed (alarms, access anomalies, patrol coverage against plan, vital signs out of
   range, device health); a late event updates its own hour.
4. **alerts** (`smartrehab://audit/feed_alerts`): freshness per feed and per device, volume anomalies and range
   checks against `expectations/feeds.yaml`, into `audit.feed_alerts`.

Exactly once and idempotent: stream checkpoints (`<var>/checkpoints/`) plus MERGEs keyed on the event, the
hour or the finding; a run killed half-way is simply re-run, and a run with nothing new changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from smartrehab.assets import FEED_ALERTS, FEED_EVENTS, FEED_SILVER, FEED_UNIT_HOURLY

DEFAULT_ARGS = {"owner": "data-platform", "retries": 2, "retry_delay": timedelta(minutes=1)}


def _session(name: str):
    from smartrehab.settings import get_settings
    from smartrehab.spark import get_spark

    settings = get_settings()
    return get_spark(name, settings), settings


@dag(
    dag_id="feeds_ingest",
    schedule=timedelta(minutes=15),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["feeds", "bronze", "silver", "streaming", "smartrehab"],
    doc_md=__doc__,
)
def feeds_ingest():
    @task(outlets=[FEED_EVENTS], execution_timeout=timedelta(minutes=14))
    def stream_available_now() -> dict:
        from spark_jobs.feeds.stream import run

        spark, settings = _session("feeds_ingest")
        return run(spark, settings, available_now=True)

    @task(outlets=[FEED_SILVER], execution_timeout=timedelta(minutes=14))
    def conform_silver() -> dict:
        from spark_jobs.feeds import silver

        spark, settings = _session("feeds_silver")
        return silver.run(spark, settings)

    @task(outlets=[FEED_UNIT_HOURLY], execution_timeout=timedelta(minutes=14))
    def unit_hourly() -> dict:
        from spark_jobs.feeds import hourly

        spark, settings = _session("feeds_hourly")
        return hourly.run(spark, settings)

    @task(outlets=[FEED_ALERTS], execution_timeout=timedelta(minutes=10))
    def feed_alerts() -> dict:
        from spark_jobs.feeds import quality

        spark, settings = _session("feeds_alerts")
        return quality.run(spark, settings)

    stream_available_now() >> conform_silver() >> unit_hourly() >> feed_alerts()


feeds_ingest()
