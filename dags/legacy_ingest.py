"""
### Legacy ingest (bronze → silver)

Loads the legacy systems' deliveries (`<landing>/legacy/<YYYYMMDD>/`) into bronze (one table,
`bronze.legacy_rows`, raw values keyed by legacy column) and silver, catalog-driven: typed, decoded, deduplicated, pseudonymised, every version kept; rejected rows go
to `quarantine.legacy_rows` with the rule they broke; `audit.load_reconciliation` proves per file
that source rows = silver rows + quarantined rows.

* A scheduled run loads the delivery of its logical date (so `airflow dags backfill` loads past
  days); a manual run loads every delivery with files not loaded yet, or the day given as the
  `delivery_day` parameter (YYYY-MM-DD).
* Files already loaded (same bytes) are skipped and logged, so re-running changes nothing.
* Gates: bronze and silver Great Expectations suites, plus the reconciliation gate; a `fail`
  expectation stops the run before the silver Asset is published.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task

from smartrehab.assets import SILVER_LEGACY

DEFAULT_ARGS = {"owner": "data-platform", "retries": 1, "retry_delay": timedelta(minutes=2)}


@dag(
    dag_id="legacy_ingest",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["legacy", "bronze", "silver", "smartrehab"],
    doc_md=__doc__,
    params={"delivery_day": Param(None, type=["null", "string"], description="YYYY-MM-DD; empty = all pending")},
)
def legacy_ingest():
    @task
    def pending_deliveries() -> list[str]:
        from smartrehab import pipeline
        from smartrehab.settings import get_settings

        ctx = get_current_context()
        wanted = ctx["params"].get("delivery_day")
        if wanted:
            return [wanted]
        run = ctx.get("dag_run")
        if run is not None and run.run_type == "scheduled" and ctx.get("logical_date") is not None:
            return [ctx["logical_date"].strftime("%Y-%m-%d")]
        return [d.isoformat() for d in pipeline.pending_days(get_settings())]

    @task
    def ingest(days: list[str]) -> dict:
        from smartrehab import pipeline
        from smartrehab.settings import get_settings

        return pipeline.ingest_legacy(get_settings(), [date.fromisoformat(d) for d in days])

    @task
    def gate_bronze(summary: dict) -> dict:
        from smartrehab import pipeline
        from smartrehab.settings import get_settings

        return pipeline.quality_gate(get_settings(), "bronze")

    @task
    def gate_reconciliation(summary: dict) -> dict:
        from smartrehab import pipeline
        from smartrehab.settings import get_settings

        return pipeline.quality_gate(get_settings(), "audit")

    @task(outlets=[SILVER_LEGACY])
    def gate_silver(bronze: dict, audit: dict) -> dict:
        from smartrehab import pipeline
        from smartrehab.settings import get_settings

        return pipeline.quality_gate(get_settings(), "silver")

    loaded = ingest(pending_deliveries())
    gate_silver(gate_bronze(loaded), gate_reconciliation(loaded))


legacy_ingest()
