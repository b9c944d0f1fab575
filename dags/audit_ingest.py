"""
### Audit: the SQL endpoint's statements into the chained audit trail

The SQL endpoint's access check (`smartrehab/access/jvm/EndpointAccess.java`) spools one JSON line per
statement, allowed or refused (user, role, statement, tables read). Every five minutes this DAG chains the
spool into `audit.access_log` (`smartrehab.audit.ingest_spool`) and then recomputes the whole chain; a broken
chain fails the run and names the first deleted, altered or inserted record.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

DEFAULT_ARGS = {"owner": "security", "retries": 2, "retry_delay": timedelta(minutes=1)}


@dag(
    dag_id="audit_ingest",
    schedule="*/5 * * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["audit", "security", "smartrehab"],
    doc_md=__doc__,
)
def audit_ingest():
    @task
    def ingest() -> int:
        from smartrehab import audit
        from smartrehab.settings import get_settings

        return audit.ingest_spool(get_settings())

    @task
    def verify(ingested: int) -> dict:
        from smartrehab import audit
        from smartrehab.settings import get_settings

        verdict = audit.verify(get_settings())
        if not verdict.ok:
            raise RuntimeError("audit.access_log fails verification: " + "; ".join(verdict.problems[:5]))
        return {"ingested": ingested, "records": verdict.records}

    verify(ingest())


audit_ingest()
