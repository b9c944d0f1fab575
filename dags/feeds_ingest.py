"""
### Feeds ingest (landing zone → bronze.feed_events)

Every 15 minutes, Spark Structured Streaming picks up the live-feed files that landed since the last run
(`<landing>/feeds/<feed>/<YYYYMMDD>/*.jsonl`, all nine contracted feeds) with an **availableNow** trigger:
it processes every new file in micro-batches, then stops.

* Each line is checked against its feed contract (`contracts/`); valid events are upgraded to the latest
  contract version's payload shape and MERGEd insert-if-absent on `event_id` into `bronze.feed_events`;
  rejected lines go to `quarantine.feed_events` with their reason (invalid_json, missing_event_id,
  unknown_contract_version, schema_violation:<field>, future_timestamp, oversize, ...).
* Exactly once: the stream checkpoint (`<var>/checkpoints/feeds/`) plus the idempotent MERGE; a run killed
  half-way is simply re-run, re-sent events (same `event_id`) land once, late events are never dropped.
* Publishes the `smartrehab://bronze/feed_events` Asset.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from smartrehab.assets import FEED_EVENTS

DEFAULT_ARGS = {"owner": "data-platform", "retries": 2, "retry_delay": timedelta(minutes=1)}


@dag(
    dag_id="feeds_ingest",
    schedule=timedelta(minutes=15),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["feeds", "bronze", "streaming", "smartrehab"],
    doc_md=__doc__,
)
def feeds_ingest():
    @task(outlets=[FEED_EVENTS], execution_timeout=timedelta(minutes=14))
    def stream_available_now() -> dict:
        from smartrehab.settings import get_settings
        from smartrehab.spark import get_spark
        from spark_jobs.feeds.stream import run

        settings = get_settings()
        return run(get_spark("feeds_ingest", settings), settings, available_now=True)

    stream_available_now()


feeds_ingest()
