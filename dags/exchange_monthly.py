"""
### Exchange: monthly packages (四区五中心月报, person-level events, 公检法 incident report)

Builds, signs, verifies, reconciles and delivers the monthly packages of docs/exchange/packages.yaml,
one task each, to every receiver whose profile includes them:
`kpi_monthly` (四区五中心月度指标报表, moj), `person_events` (入所、解除、转区、诊断评估明细, moj, police,
procuratorate) and `incident_report` (安全事件通报, police, procuratorate, court). Runs on the 2nd of
Runs whenever the gold marts are updated (`GOLD_MARTS` Asset) and on the 6th of each month at 07:30
Asia/Shanghai.

* A run without parameters exports the months that became final since the last final delivery of the
  package (a month is final 5 days after its end, measured by gold's last census day, for the legacy
  systems' late corrections; at most 31 months are caught up); so the first gold update that reaches the
  5th sends the month before, and the runs after it find nothing due until the next month closes.
* Backfill: trigger with the `period` parameter (YYYY-MM) for any past month.
* An open month is refused as final; with `final` = false it goes out as provisional.
* Re-runs replace (one delivery row per package, month and receiver in `audit.exchange_deliveries`);
  a failed schema, signature or reconciliation check blocks that receiver's delivery, writes
  `audit.exchange_alerts` and fails the package's task, without stopping the other packages.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from smartrehab.assets import EXCHANGE_PACKAGES, GOLD_MARTS

DEFAULT_ARGS = {"owner": "data-platform", "retries": 1, "retry_delay": timedelta(minutes=10)}
PACKAGES = ("kpi_monthly", "person_events", "incident_report")


@dag(
    dag_id="exchange_monthly",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("30 7 6 * *", timezone="Asia/Shanghai"),
                                 assets=[GOLD_MARTS]),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["exchange", "gold", "moj", "gongjianfa", "smartrehab"],
    doc_md=__doc__,
    params={
        "period": Param(None, type=["null", "string"], pattern=r"^\d{4}-\d{2}$",
                        description="YYYY-MM (backfill, or re-send: replaces); empty = the months due"),
        "final": Param(True, type="boolean", description="false: an open month goes out as provisional"),
    },
)
def exchange_monthly():
    @task(inlets=[GOLD_MARTS], outlets=[EXCHANGE_PACKAGES])
    def export(package: str) -> dict:
        from smartrehab.exchange import jobs
        from smartrehab.settings import get_settings

        params = get_current_context()["params"]
        return jobs.export_package(get_settings(), package, params.get("period") or None,
                                   final=bool(params.get("final", True)))

    for package in PACKAGES:
        export.override(task_id=f"export_{package}")(package)


exchange_monthly()
