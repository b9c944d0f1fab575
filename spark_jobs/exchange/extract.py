"""Read an exchange package's files from gold and silver, shaped as docs/exchange/packages.yaml says.

    tables = extract(spark, settings, spec, "population_daily", period, "moj")
    # {"population": pyarrow.Table, "movements": pyarrow.Table}, ready for smartrehab.exchange.bag.build_package

One query per file, in ``sql/<package>__<file>.sql`` (Jinja: the schemas, the period's first and last day,
the receiver's authorised direct identifiers and, for kpi_monthly, the indicators of the report from the
indicator registry). Each table holds exactly the builder's input columns for that receiver (the spec's
columns, pseudonym columns under their ``derive.pseudonym_of`` input name, a direct identifier only when the
receiver is authorised for it), in the spec's order; formatting, pseudonyms and checks are the builder's.
Nothing here formats values: dates stay dates, counts integers; only date-times are rendered in SQL as
Beijing wall-clock text, so no time-zone conversion happens between Spark and Arrow.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa

from smartrehab.exchange.bag import ExchangeError
from smartrehab.exchange.spec import Period, Spec

SQL_DIR = Path(__file__).with_name("sql")
GOLD, STAGING, SILVER = "gold", "gold_staging", "silver"
# A month column of an indicator's model, in the order they are looked for.
MONTH_COLUMNS = ("month", "assessment_month", "admission_month")
SESSION_TIME_ZONES = {"Asia/Shanghai", "+08:00", "GMT+08:00", "UTC+08:00"}
INCIDENT_PERSON = "incident_person"
_NAME = re.compile(r"[a-z_][a-z0-9_]*")


class ExtractError(ExchangeError):
    """A package's source could not be read (a missing table or column): which one, and what to run."""


def render(name: str, **context) -> str:
    """The text of ``sql/<name>.sql`` with ``context`` filled in (undefined names are an error)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(SQL_DIR), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    return env.get_template(f"{name}.sql").render(**context)


def _check_name(value: str, where: str) -> str:
    if not _NAME.fullmatch(value):
        raise ExtractError(f"{where}: '{value}' is not a plain lower-case SQL name")
    return value


def report_indicators(spark, settings, spec: Spec, package: str, gold: str = GOLD) -> list[dict]:
    """The indicators of ``package`` (kpi_monthly) with their gold model, column and month column."""
    from smartrehab.exchange.dictionary import load_indicators

    registry = {i["id"]: i for i in load_indicators(settings)}
    out = []
    for ind in spec.package(package).indicator_ids:
        entry = registry.get(ind)
        if entry is None:
            raise ExtractError(f"indicator {ind} of {package} is not in dbt/indicators/indicators.yml")
        model = _check_name(str(entry["model"]), f"indicator {ind} model")
        column = _check_name(str(entry["column"]), f"indicator {ind} column")
        table = f"{gold}.{model}"
        if not spark.catalog.tableExists(table):
            raise ExtractError(f"indicator {ind}: {table} does not exist; build gold first (dbt build --select {model})")
        columns = spark.table(table).columns
        month = next((c for c in MONTH_COLUMNS if c in columns), None)
        if month is None or column not in columns or "centre" not in columns:
            raise ExtractError(f"indicator {ind}: {table} needs centre, {column} and a month column "
                               f"({' or '.join(MONTH_COLUMNS)}); it has {', '.join(columns)}")
        out.append({"id": ind, "model": model, "column": column, "month_column": month})
    return out


def context(spark, settings, spec: Spec, package: str, period: Period, *, gold: str = GOLD,
            staging: str = STAGING, silver: str = SILVER) -> dict:
    """What the queries of ``package`` (extract and reconcile) are filled with, receiver aside."""
    ctx = {"gold": gold, "gold_staging": staging, "silver": silver, "first": period.first.isoformat(),
           "last": period.last.isoformat()}
    if spec.package(package).indicators:
        ctx["indicators"] = report_indicators(spark, settings, spec, package, gold)
    return ctx


def _empty(names: list[str]) -> pa.Table:
    return pa.table({n: pa.array([], pa.string()) for n in names})


def extract(spark, settings, spec: Spec, package: str, period: Period, receiver: str, *, gold: str = GOLD,
            staging: str = STAGING, silver: str = SILVER, ctx: dict | None = None) -> dict[str, pa.Table]:
    """Every file of ``package`` for ``period`` and ``receiver``, as pyarrow tables keyed by file id.

    A file whose silver table is not loaded at all (``incident_report/persons``, legacy AQ_SJRY, when the
    deployment does not load it) comes back empty, with its header only, as the spec allows for an
    optional file (``required: false``); a missing table behind a required file is an error.
    """
    tz = spark.conf.get("spark.sql.session.timeZone")
    if tz not in SESSION_TIME_ZONES:
        raise ExtractError(f"the Spark session's time zone is {tz}; exchange packages are in Beijing time, so the "
                           f"session must run with spark.sql.session.timeZone=Asia/Shanghai (smartrehab/spark.py)")
    pkg = spec.package(package)
    rcv = spec.receiver(receiver)
    ctx = dict(ctx) if ctx is not None else context(spark, settings, spec, package, period, gold=gold,
                                                     staging=staging, silver=silver)
    out: dict[str, pa.Table] = {}
    for fid, fspec in pkg.files.items():
        names = [c.input_name for c in spec.columns_for(fspec, rcv)]
        authorised = {c.name for c in spec.columns_for(fspec, rcv) if c.pii == "direct"}
        ctx.update(with_name="true" if "name" in authorised else "false",
                   with_id_number="true" if "id_number" in authorised else "false")
        if package == "incident_report" and fid == "persons" and not spark.catalog.tableExists(
                f"{silver}.{INCIDENT_PERSON}"):
            if fspec.required:
                raise ExtractError(f"{silver}.{INCIDENT_PERSON} is not loaded; load legacy AQ_SJRY first")
            out[fid] = _empty(names)
            continue
        try:
            frame = spark.sql(render(f"{package}__{fid}", **ctx))
        except ExchangeError:
            raise
        except Exception as exc:  # AnalysisException: a missing table or column in gold / silver
            raise ExtractError(f"{package}/{fspec.path}: the query sql/{package}__{fid}.sql failed over {gold}, "
                               f"{staging} and {silver}: {str(exc).splitlines()[0]}. Build gold first "
                               f"(smartrehab run gold_build, or dbt build).") from exc
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise ExtractError(f"sql/{package}__{fid}.sql returns {frame.columns}; the spec's {fspec.path} needs "
                               f"{missing} as well")
        out[fid] = frame.select(*names).toArrow()
    return out


def gold_as_of(spark, gold: str = GOLD):
    """The last day gold is complete for: its last census day (max census_date of fct_daily_population)."""
    table = f"{gold}.fct_daily_population"
    if not spark.catalog.tableExists(table):
        raise ExtractError(f"{table} does not exist: build gold first (smartrehab run gold_build)")
    from pyspark.sql import functions as F

    day = spark.table(table).agg(F.max("census_date").alias("d")).first()["d"]
    if day is None:
        raise ExtractError(f"{table} is empty: no census day in gold yet, so no period is complete")
    return day


def has_incident_person(spark, silver: str = SILVER) -> bool:
    return spark.catalog.tableExists(f"{silver}.{INCIDENT_PERSON}")
