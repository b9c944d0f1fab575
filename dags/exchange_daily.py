"""
### Exchange: daily population package (上传司法部日报)

Builds, signs, verifies, reconciles and delivers `population_daily` (在所人数及人员流动日报: census per
centre and zone, admissions, transfers and releases) to every receiver whose profile includes it
(docs/exchange/packages.yaml; today the Ministry, `moj`). Runs whenever the gold marts are updated and
every morning at 07:00 Asia/Shanghai.

* A run without parameters exports the days gold holds completely (up to gold's last census day) that
  are newer than the last final delivery (the newest one only on a first run; at most 31 are caught up).
  A day with no movements is a valid day (zeros in movements.csv) as long as the census covers it.
* A day asked for again is rebuilt and replaced, never sent twice (`audit.exchange_deliveries` keeps
  one row per package, day and receiver).
* Backfill: trigger with the `period` parameter (YYYY-MM-DD) for any past day.
* A day gold does not hold completely yet is refused as final; with `final` = false it goes out as
  provisional (`Exchange-Period-Status: provisional` in bag-info.txt).
* A package that fails its schema, signature or reconciliation with gold is not delivered; the failure
  is written to `audit.exchange_alerts` and fails the task.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from smartrehab.assets import EXCHANGE_PACKAGES, GOLD_MARTS

DEFAULT_ARGS = {"owner": "data-platform", "retries": 1, "retry_delay": timedelta(minutes=10)}


@dag(
    dag_id="exchange_daily",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 7 * * *", timezone="Asia/Shanghai"),
                                 assets=[GOLD_MARTS]),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["exchange", "gold", "moj", "smartrehab"],
    doc_md=__doc__,
    params={
        "period": Param(None, type=["null", "string"], pattern=r"^\d{4}-\d{2}-\d{2}$",
                        description="YYYY-MM-DD (backfill, or re-send: replaces); empty = the days due"),
        "final": Param(True, type="boolean", description="false: an open day goes out as provisional"),
    },
)
def exchange_daily():
    @task(inlets=[GOLD_MARTS], outlets=[EXCHANGE_PACKAGES])
    def export_population_daily() -> dict:
        from smartrehab.exchange import jobs
        from smartrehab.settings import get_settings

        params = get_current_context()["params"]
        return jobs.export_package(get_settings(), "population_daily", params.get("period") or None,
                                   final=bool(params.get("final", True)))

    export_population_daily()


exchange_daily()
