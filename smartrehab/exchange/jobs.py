"""The exchange steps the DAGs call (``dags/exchange_daily.py``, ``dags/exchange_monthly.py``).

Like the steps of ``smartrehab/pipeline.py``: each takes the settings, gets the process's Spark session and
returns a small summary (an XCom). The work is ``spark_jobs.exchange.run``.
"""

from __future__ import annotations

from smartrehab.pipeline import spark_step
from smartrehab.settings import Settings
from smartrehab.spark import get_spark


@spark_step
def export_package(s: Settings, package: str, period: str | None = None, final: bool = True,
                   receivers: list[str] | None = None, log=print) -> dict:
    """Export ``package`` for ``period``, or, without one, for the periods due (the closed periods after the
    last final delivery, ``run.due_periods``; none when the newest is delivered already). Every period is
    tried; if any failed, the error names them all (their alerts are in audit.exchange_alerts)."""
    from spark_jobs.exchange import run

    spark = get_spark("exchange", s)
    periods = [period] if period else run.due_periods(spark, package)
    if not periods:
        log(f"exchange: {package}: nothing due (the newest closed period is delivered already)")
    delivered: dict[str, dict[str, str]] = {}
    errors: list[str] = []
    for p in periods:
        try:
            results = run.export(spark, s, package, p, receivers=receivers, final=final, log=log)
        except run.ExportError as exc:
            errors.append(str(exc))
            continue
        delivered[p] = {r.receiver: r.receipt_sm3 for r in results}
    if errors:
        raise run.ExportError("\n".join(errors))
    return {"package": package, "periods": sorted(delivered), "receipts_sm3": delivered}
