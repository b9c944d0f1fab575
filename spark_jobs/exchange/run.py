"""Export an exchange package for a period: extract, build, verify, reconcile, deliver, record.

    export(spark, settings, "population_daily", "2026-11-19")            # every receiver of the package
    export(spark, settings, "kpi_monthly", "2026-10", receivers=["moj"])
    export(spark, settings, "person_events", "2026-11", final=False)     # an open month, as provisional

For each receiver whose profile includes the package: the files are read from gold / silver
(``extract``), built into a signed bag under ``var/exchange/packages`` (``bag.build_package``), verified
with our own public key as the receiver would (``verify.verify_bag``) and reconciled with gold
(``reconcile``). Any failure blocks that receiver's delivery and is written to ``audit.exchange_alerts``
(one row per package, period, receiver and rule, merged: a re-run of the same failure updates its row);
once every receiver is done, the failures are raised together (``ExportFailed``). A package that passes
goes to the receiver's target (the outbox by default, SFTP where ``var/exchange/delivery.yaml`` says so)
and is recorded in ``audit.exchange_deliveries``, one row per package, period and receiver: a re-run
replaces the bag, the zip, the delivered file and that row, and never adds a second one.

A period is final once gold's last census day (max census_date of gold.fct_daily_population) reaches
the period's last day plus the package's ``closes_after_days``. An open period is refused
(``PeriodOpen``) unless ``final=False``, which exports it as provisional (bag-info.txt says so); a
closed period always goes out final.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from smartrehab.exchange import bag, crypto, deliver
from smartrehab.exchange.bag import BuildRefused, ExchangeError
from smartrehab.exchange.spec import Period, Spec, closes_on, load_spec, parse_period
from smartrehab.exchange.verify import verify_bag
from spark_jobs.common.delta import merge_changed, table_exists
from spark_jobs.exchange import extract, reconcile

ALERTS = "audit.exchange_alerts"
DELIVERIES = "audit.exchange_deliveries"
ALERT_KEYS = ["package", "period", "receiver", "rule"]
DELIVERY_KEYS = ["package", "period", "receiver"]
ALERTS_SCHEMA = ("package string, period string, receiver string, rule string, severity string, message string, "
                 "detected_at timestamp")
DELIVERIES_SCHEMA = ("package string, period string, receiver string, status string, schema_version string, "
                     "bag_name string, tagmanifest_sm3 string, zip_sha256 string, bytes bigint, transport string, "
                     "target string, delivered_at timestamp")
MAX_CATCH_UP = 31


class ExportError(ExchangeError):
    """A package was not exported: which package, period and receiver, which rule, and what to do."""


class PeriodOpen(ExportError):
    pass


class ExportFailed(ExportError):
    def __init__(self, message: str, results: list[ReceiverResult]):
        super().__init__(message)
        self.results = results


@dataclass
class ReceiverResult:
    receiver: str
    status: str = "failed"            # delivered | failed
    bag: str = ""
    destination: str = ""
    receipt_sm3: str = ""
    failures: list[tuple[str, str]] = field(default_factory=list)   # (rule, message)
    warnings: list[str] = field(default_factory=list)


def packages_dir(settings):
    return settings.var_dir / "exchange" / "packages"


def package_receivers(spec: Spec, package: str, receivers: Iterable[str] | None = None) -> list[str]:
    """The receivers to export ``package`` to: those given (each must receive it), else all that do."""
    spec.package(package)
    if receivers is None:
        return sorted(r.id for r in spec.receivers.values() if package in r.packages)
    out = []
    for rid in receivers:
        r = spec.receiver(rid)
        if package not in r.packages:
            raise ExportError(f"receiver '{rid}' ({r.name_zh}) does not receive {package} (its packages: "
                              f"{', '.join(r.packages)}); see receivers.{rid} in {spec.path.name}")
        out.append(rid)
    return out


# ---- periods -----------------------------------------------------------------------------------------
def _previous(period: Period) -> Period:
    d = period.first - timedelta(days=1)
    return parse_period(period.kind, d.isoformat() if period.kind == "day" else d.strftime("%Y-%m"))


def latest_closed(spec: Spec, package: str, as_of: date) -> Period:
    """The newest period of ``package`` that is final with data complete up to ``as_of``."""
    pkg = spec.package(package)
    d = as_of - timedelta(days=pkg.closes_after_days)
    p = parse_period(pkg.period, d.isoformat() if pkg.period == "day" else d.strftime("%Y-%m"))
    while closes_on(pkg, p) > as_of:
        p = _previous(p)
    return p


def last_final_delivery(spark, package: str) -> str | None:
    """The newest period of ``package`` delivered as final (to any receiver), from audit.exchange_deliveries."""
    if not table_exists(spark, DELIVERIES):
        return None
    from pyspark.sql import functions as F

    return (spark.table(DELIVERIES).where((F.col("package") == package) & (F.col("status") == "final"))
            .agg(F.max("period").alias("p")).first()["p"])


def due_periods(spark, package: str, *, spec: Spec | None = None, max_catch_up: int = MAX_CATCH_UP) -> list[str]:
    """The periods a scheduled run exports, oldest first: the closed periods after the last final delivery
    of the package (at most ``max_catch_up``, the newest ones), or only the newest closed period when the
    package was never delivered final. Empty when the newest closed period is delivered already; a period
    before the last final delivery (a backfill, or a re-send after a correction) needs an explicit period."""
    spec = spec or load_spec()
    newest = latest_closed(spec, package, extract.gold_as_of(spark))
    last = last_final_delivery(spark, package)
    return periods_after(newest, last, max_catch_up)


def periods_after(newest: Period, last: str | None, max_catch_up: int = MAX_CATCH_UP) -> list[str]:
    """``newest`` and the periods before it that are after ``last`` (period labels compare as text), at most
    ``max_catch_up``, oldest first; ``[newest]`` when ``last`` is None."""
    if last is None:
        return [newest.label]
    out: list[Period] = []
    p = newest
    while p.label > last and len(out) < max_catch_up:
        out.append(p)
        p = _previous(p)
    return [p.label for p in reversed(out)]


# ---- audit tables ------------------------------------------------------------------------------------
def _ensure_audit_db(spark) -> None:
    spark.sql("CREATE DATABASE IF NOT EXISTS audit")


def write_alerts(spark, package: str, period: str, receiver: str, failures: list[tuple[str, str]],
                 severity: str = "fail") -> None:
    """One row per (package, period, receiver, rule); the messages of one rule are joined."""
    if not failures:
        return
    by_rule: dict[str, list[str]] = {}
    for rule, message in failures:
        by_rule.setdefault(rule, []).append(message)
    now = datetime.now(UTC)
    rows = [(package, period, receiver, rule, severity, "\n".join(msgs)[:8000], now) for rule, msgs in by_rule.items()]
    _ensure_audit_db(spark)
    merge_changed(spark, spark.createDataFrame(rows, ALERTS_SCHEMA), ALERTS, ALERT_KEYS, ignore=("detected_at",))


def record_delivery(spark, package: str, period: str, receiver: str, status: str, schema_version: str,
                    receipt: deliver.Receipt) -> None:
    at = datetime.fromisoformat(receipt.at) if receipt.at else datetime.now(UTC)
    row = (package, period, receiver, status, schema_version, receipt.file.removesuffix(".zip"), receipt.receipt_sm3,
           receipt.sha256, int(receipt.bytes), receipt.transport, receipt.destination, at)
    _ensure_audit_db(spark)
    merge_changed(spark, spark.createDataFrame([row], DELIVERIES_SCHEMA), DELIVERIES, DELIVERY_KEYS)


def record_to_audit_trail(spark, settings, *, package: str, period: str, receiver: str, outcome: str,
                          receipt: deliver.Receipt | None = None, error: str = "") -> None:
    """THE place where an exchange delivery is to be written to the audit trail (docs/exchange/README.md §11:
    every delivery also goes to the audit trail). ``_export_one`` calls it once per delivery, whatever the
    outcome (``delivered``, or ``failed`` with ``error``), after the delivery log (var/exchange/delivery-log.jsonl)
    and, when delivered, audit.exchange_deliveries are written. The audit trail itself (``audit.access_log``) is
    built separately; until it exists this records nothing more. Its writer belongs here and nowhere else."""
    return None


# ---- the export ----------------------------------------------------------------------------------------
def _export_one(spark, settings, spec: Spec, package: str, period: Period, receiver: str, *, as_of: date,
                provisional: bool, ctx: dict, log) -> ReceiverResult:
    res = ReceiverResult(receiver)
    pkg = spec.package(package)
    where = f"{package} {period.label} for {receiver}"
    try:
        tables = extract.extract(spark, settings, spec, package, period, receiver, ctx=ctx)
    except extract.ExtractError as exc:
        res.failures.append(("extract", str(exc)))
        return res
    if all(t.num_rows == 0 for t in tables.values()):
        res.failures.append(("no_data", f"{where}: gold holds no rows for the period (every file is empty; gold's "
                                        f"census runs up to {as_of}). Check the period, or build gold for it; an "
                                        f"empty package is never sent."))
        return res
    try:
        bag_dir = bag.build_package(settings, package, period.label, receiver, tables, packages_dir(settings),
                                    as_of=as_of, provisional=provisional, spec=spec)
    except BuildRefused as exc:
        res.failures.append(("build", str(exc)))
        return res
    res.bag = str(bag_dir)
    public = crypto.signing_key(settings, spec.receiver(receiver).signature).public
    report = verify_bag(bag_dir, public, spec)
    res.failures += [(f"verify:{f.rule}", f"{f.file}: {f.message}") for f in report.findings]
    for f in reconcile.reconcile(spark, spec, package, period, bag_dir, receiver, ctx):
        if f.severity == "fail":
            res.failures.append((f.rule, f.message))
        else:
            res.warnings.append(f.message)
    if res.failures:
        return res
    try:
        receipt = deliver.deliver(settings, bag_dir, public_key=public)
    except ExchangeError as exc:
        res.failures.append(("delivery", str(exc)))
        record_to_audit_trail(spark, settings, package=package, period=period.label, receiver=receiver,
                              outcome="failed", error=str(exc))
        return res
    record_delivery(spark, package, period.label, receiver, "provisional" if provisional else "final",
                    pkg.schema_version, receipt)
    record_to_audit_trail(spark, settings, package=package, period=period.label, receiver=receiver,
                          outcome="delivered", receipt=receipt)
    res.status, res.destination, res.receipt_sm3 = "delivered", receipt.destination, receipt.receipt_sm3
    log(f"exchange: {bag_dir.name} delivered to {receipt.destination} (receipt sm3:{receipt.receipt_sm3[:16]}…)")
    return res


def export(spark, settings, package: str, period: str, receivers: Iterable[str] | None = None, final: bool = True,
           *, spec: Spec | None = None, log=print) -> list[ReceiverResult]:
    """Export ``package`` for ``period`` (YYYY-MM-DD or YYYY-MM) to each receiver (see the module doc).

    Returns one result per receiver when every one was delivered; raises ``PeriodOpen`` for an open period
    asked for as final, ``ExportFailed`` (after trying every receiver) when any receiver's package failed.
    """
    spec = spec or load_spec()
    pkg = spec.package(package)
    try:
        per = parse_period(pkg.period, period)
    except ValueError as exc:
        raise ExportError(f"{package}: {exc}") from None
    rids = package_receivers(spec, package, receivers)
    as_of = extract.gold_as_of(spark)
    due = closes_on(pkg, per)
    provisional = as_of < due
    if provisional and final:
        raise PeriodOpen(
            f"{package} {per.label} is still open: gold's last census day is {as_of}, and the period is final once "
            f"gold holds data up to {due} ({pkg.closes_after_days} day(s) after its end). It was not exported. "
            f"Wait for gold to catch up, or export it as provisional (final=False; DAG param final=false).")
    try:
        ctx = extract.context(spark, settings, spec, package, per)
    except extract.ExtractError as exc:  # e.g. an indicator's gold model is missing: nothing can be built
        results = [ReceiverResult(rid, failures=[("extract", str(exc))]) for rid in rids]
        for r in results:
            write_alerts(spark, package, per.label, r.receiver, r.failures)
        raise ExportFailed(f"{package} {per.label}: not exported to {', '.join(rids)}: {exc}", results) from exc
    results = []
    for rid in rids:
        res = _export_one(spark, settings, spec, package, per, rid, as_of=as_of, provisional=provisional, ctx=ctx,
                          log=log)
        if res.failures:
            write_alerts(spark, package, per.label, rid, res.failures)
        for w in res.warnings:
            log(f"exchange: warning: {package} {per.label} for {rid}: {w}")
        results.append(res)
    failed = [r for r in results if r.failures]
    if failed:
        lines = [f"{package} {per.label}: {len(failed)} of {len(results)} receiver(s) not delivered "
                 f"(alerts in {ALERTS}):"]
        for r in failed:
            lines += [f"  {r.receiver}: [{rule}] {msg}" for rule, msg in r.failures[:10]]
        raise ExportFailed("\n".join(lines), results)
    return results
