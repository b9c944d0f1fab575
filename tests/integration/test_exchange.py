"""Exchange packages from the lakehouse (issue 28): the export DAGs, extract from gold, build, verify, reconcile,
deliver, alert.

Reuses the session's lake (``legacy_loaded``) and builds only the dbt models the packages read, unless an
earlier module of the session (test_dbt_indicators) built them already. Deliveries go to the outbox of the
tests' var dir; the audit tables and var/exchange are reset once for the module. Every delivered package is
checked with the receiver's tool, ``smartrehab export verify``, run as a command.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.airflow]

# What the packages read besides the models of kpi_monthly's indicators (added from the registry).
BASE_MODELS = ("fct_daily_population", "fct_zone_movements", "fct_assessment_areas", "int_zone_stays",
               "stg_silver__admission", "stg_silver__assessment", "stg_silver__person", "stg_silver__incident")
SMARTREHAB = Path(sys.executable).with_name("smartrehab")  # the console script of pyproject.toml


def _schema(model: str) -> str:
    return "gold_staging" if model.startswith(("stg_", "int_")) else "gold"


@pytest.fixture(scope="module")
def spec():
    from smartrehab.exchange.spec import load_spec

    return load_spec()


@pytest.fixture(scope="module")
def gold(legacy_loaded, spark, settings, spec):
    """Gold's last census day, with the models the packages read built and the exchange state reset."""
    from smartrehab.exchange.dictionary import load_indicators
    from smartrehab.pipeline import dbt_build
    from spark_jobs.exchange import extract, run

    registry = {i["id"]: i["model"] for i in load_indicators(settings)}
    needed = set(BASE_MODELS) | {registry[i] for i in spec.package("kpi_monthly").indicator_ids}
    missing = sorted(m for m in needed if not spark.catalog.tableExists(f"{_schema(m)}.{m}"))
    if missing:
        dbt_build(settings, select=" ".join(f"+{m}" for m in missing))
    for table in (run.ALERTS, run.DELIVERIES):
        spark.sql(f"drop table if exists {table}")
    shutil.rmtree(settings.var_dir / "exchange", ignore_errors=True)
    return extract.gold_as_of(spark)


@pytest.fixture(scope="module")
def public_pem(settings, tmp_path_factory) -> Path:
    """Our SM2 public key as a PEM file: what the receivers are handed out of band."""
    from smartrehab.exchange import crypto

    path = tmp_path_factory.mktemp("keys") / "sender.pem"
    path.write_text(crypto.signing_key(settings, "sm2").public.to_pem(), encoding="ascii")
    return path


def verify_cli(package: Path, pem: Path) -> subprocess.CompletedProcess:
    """``smartrehab export verify <package> --public-key <pem>``, as a receiver runs it."""
    return subprocess.run([str(SMARTREHAB), "export", "verify", str(package), "--public-key", str(pem)],
                          capture_output=True, text=True, timeout=120)


def assert_valid(package: Path, pem: Path) -> None:
    res = verify_cli(package, pem)
    assert res.returncode == 0 and res.stdout.startswith("VALID"), res.stdout + res.stderr


def _outbox(settings, receiver: str) -> Path:
    return settings.var_dir / "exchange" / "outbox" / receiver


def _csv(path: Path, encoding: str = "utf-8") -> list[list[str]]:
    return [line.split(",") for line in path.read_bytes().decode(encoding).split("\r\n")[1:-1]]


def _busiest_month(spark, sql: str, until: str) -> str:
    """The month (YYYY-MM) with the most rows of ``sql`` (a query of ``m``, ``n``) up to ``until``."""
    rows = [r for r in spark.sql(sql).collect() if r["m"] is not None and r["m"] <= until]
    assert rows, f"no month with data up to {until}: {sql}"
    return max(rows, key=lambda r: (r["n"], r["m"]))["m"]


def _movements(spark, day: str) -> dict[str, tuple[int, int, int]]:
    """centre -> (admissions, transfers, releases) of gold.fct_zone_movements on the day (no row: no entry)."""
    return {r[0]: (r[1], r[2], r[3]) for r in spark.sql(f"""
        select centre, admissions, transfers, releases from gold.fct_zone_movements
        where movement_date = date'{day}'""").collect()}


def _census_centres(spark, day: str) -> list[str]:
    return sorted(r[0] for r in spark.sql(
        f"select distinct centre from gold.fct_daily_population where census_date = date'{day}'").collect())


@pytest.fixture(scope="module")
def daily(gold, airflow_env, spark, settings):
    """The daily DAG run as the scheduler runs it (no parameters): it exports the newest closed day."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(settings.repo_root / "dags" / "exchange_daily.py"))
    assert bag.import_errors == {}
    run = bag.dags["exchange_daily"].test()
    day = gold.isoformat()
    zip_path = _outbox(settings, "moj") / f"population_daily_{day}_moj.zip"
    return day, run, zip_path.read_bytes() if zip_path.exists() else b""


def test_daily_dag_exports_the_newest_closed_day(daily, spark, settings, public_pem):
    from smartrehab.exchange.crypto import sm3_hex
    from spark_jobs.exchange import run

    day, dag_run, zip_bytes = daily
    assert "success" in str(dag_run.state), dag_run.state
    delivered = _outbox(settings, "moj") / f"population_daily_{day}_moj.zip"
    assert zip_bytes, f"{delivered} was not delivered"
    assert_valid(delivered, public_pem)
    # what the package holds equals gold (read back independently of reconcile.py)
    bag_dir = run.packages_dir(settings) / f"population_daily_{day}_moj"
    population = _csv(bag_dir / "data" / "population.csv")
    gold_rows = spark.sql(f"select population from gold.fct_daily_population where census_date = date'{day}'").collect()
    assert len(population) == len(gold_rows) > 0
    assert sum(int(r[3]) for r in population) == sum(r[0] for r in gold_rows)
    # one movements row for every centre of the census, zeros where gold has no movement
    moves = _movements(spark, day)
    assert {r[1]: tuple(int(v) for v in r[2:]) for r in _csv(bag_dir / "data" / "movements.csv")} == \
        {c: moves.get(c, (0, 0, 0)) for c in _census_centres(spark, day)}
    row = spark.table(run.DELIVERIES).where(f"package = 'population_daily' and period = '{day}'").collect()
    assert len(row) == 1 and row[0]["receiver"] == "moj" and row[0]["status"] == "final"
    assert row[0]["schema_version"] == "1.0" and row[0]["bag_name"] == f"population_daily_{day}_moj"
    assert row[0]["tagmanifest_sm3"] == sm3_hex((bag_dir / "tagmanifest-sm3.txt").read_bytes())  # the receipt


def test_a_day_without_movements_is_sent_with_zeros(gold, spark, settings, public_pem):
    """gold.fct_zone_movements runs from the first to the last movement day; a census day with no movement
    (after it, or a zero row) is a valid day with zero movements, not missing data."""
    from spark_jobs.exchange import run

    quiet = spark.sql(f"""
        select p.census_date
        from (select distinct census_date from gold.fct_daily_population) as p
        left join (select movement_date, sum(admissions + transfers + releases) as n
                   from gold.fct_zone_movements group by movement_date) as m
            on p.census_date = m.movement_date
        where coalesce(m.n, 0) = 0 and p.census_date < date'{gold - timedelta(days=1)}'
        order by p.census_date desc limit 1""").collect()
    assert quiet, "the tests' lake should have a census day without movements"
    day = quiet[0][0].isoformat()
    results = run.export(spark, settings, "population_daily", day)
    assert [(r.receiver, r.status) for r in results] == [("moj", "delivered")]
    assert_valid(_outbox(settings, "moj") / f"population_daily_{day}_moj.zip", public_pem)
    rows = _csv(run.packages_dir(settings) / f"population_daily_{day}_moj" / "data" / "movements.csv")
    assert sorted(r[1] for r in rows) == _census_centres(spark, day)
    assert all(r[0] == day and r[2:] == ["0", "0", "0"] for r in rows), rows


def test_rerun_replaces_and_never_duplicates(daily, gold, spark, settings):
    from spark_jobs.exchange import run

    day, _, zip_bytes = daily
    bag_dir = run.packages_dir(settings) / f"population_daily_{day}_moj"
    manifest = (bag_dir / "manifest-sha256.txt").read_bytes()
    # a scheduled run finds nothing due: the newest closed day is delivered
    assert run.due_periods(spark, "population_daily") == []
    again = run.export(spark, settings, "population_daily", day)  # asked for again: rebuilt and replaced
    assert again[0].status == "delivered"
    assert (bag_dir / "manifest-sha256.txt").read_bytes() == manifest
    # the SM2 signature is kept when the signed tag manifest is unchanged: the re-run is byte-identical
    assert (_outbox(settings, "moj") / f"population_daily_{day}_moj.zip").read_bytes() == zip_bytes
    assert [p.name for p in _outbox(settings, "moj").iterdir() if day in p.name] == [f"population_daily_{day}_moj.zip"]
    assert not [p for p in run.packages_dir(settings).iterdir() if ".tmp-" in p.name]
    assert spark.table(run.DELIVERIES).where(f"package = 'population_daily' and period = '{day}'").count() == 1


def test_monthly_exports_build_verify_and_deliver(gold, spark, settings, spec, public_pem):
    from spark_jobs.exchange import run

    closed = run.latest_closed(spec, "kpi_monthly", gold).label
    kpi = run.export(spark, settings, "kpi_monthly", closed)
    assert [(r.receiver, r.status) for r in kpi] == [("moj", "delivered")]
    events_month = _busiest_month(spark, """
        select date_format(movement_date, 'yyyy-MM') as m, sum(admissions + releases) as n
        from gold.fct_zone_movements group by 1""", closed)
    events = run.export(spark, settings, "person_events", events_month)
    assert sorted(r.receiver for r in events) == ["moj", "police", "procuratorate"]
    incident_month = _busiest_month(spark, """
        select date_format(occurred_at, 'yyyy-MM') as m, count(*) as n
        from gold_staging.stg_silver__incident group by 1""", closed)
    incidents = run.export(spark, settings, "incident_report", incident_month)
    assert sorted(r.receiver for r in incidents) == ["court", "police", "procuratorate"]
    for package, month, results in (("kpi_monthly", closed, kpi), ("person_events", events_month, events),
                                    ("incident_report", incident_month, incidents)):
        for r in results:
            assert_valid(_outbox(settings, r.receiver) / f"{package}_{month}_{r.receiver}.zip", public_pem)
        assert spark.table(run.DELIVERIES).where(f"package = '{package}' and period = '{month}'").count() == len(results)
    # the report's indicators, for every centre of the month's census; at the tests' scale (SF0.01, one
    # legacy day) some screening and coverage models have no row for the month: those may be absent
    indicators = _csv(run.packages_dir(settings) / f"kpi_monthly_{closed}_moj" / "data" / "indicators.csv")
    got, ids = {r[2] for r in indicators}, set(spec.package("kpi_monthly").indicator_ids)
    assert got <= ids and len(got) >= len(ids) / 2, sorted(ids - got)
    liuwu = {r[1]: r[3] for r in indicators if r[2] == "liuwu_met"}
    assert liuwu and set(liuwu.values()) <= {"1.000000", "0.000000"}, liuwu
    # direct identifiers only where the profile authorises them
    header = {rid: (run.packages_dir(settings) / f"person_events_{events_month}_{rid}" / "data" / "events.csv")
              .read_bytes().split(b"\r\n")[0].decode("ascii") for rid in ("moj", "police", "procuratorate")}
    assert "name" not in header["moj"].split(",") and "id_number" not in header["moj"].split(",")
    assert header["police"].split(",")[-2:] == ["name", "id_number"]
    assert header["procuratorate"].split(",")[-1] == "id_number" and "name" not in header["procuratorate"].split(",")
    # the events per type equal the movement and assessment marts
    lines = _csv(run.packages_dir(settings) / f"person_events_{events_month}_moj" / "data" / "events.csv")
    want = spark.sql(f"""select coalesce(sum(admissions), 0), coalesce(sum(transfers), 0), coalesce(sum(releases), 0)
                         from gold.fct_zone_movements
                         where date_format(movement_date, 'yyyy-MM') = '{events_month}'""").collect()[0]
    got = [sum(1 for r in lines if r[1] == t) for t in ("01", "02", "04")]
    assert got == list(want) and got[0] > 0


def _alerts(spark, package: str, period: str) -> dict[str, str]:
    from spark_jobs.exchange import run

    return {a["rule"]: a["message"] for a in spark.table(run.ALERTS)
            .where(f"package = '{package}' and period = '{period}' and receiver = 'moj'").collect()}


def test_a_package_that_disagrees_with_its_schema_or_gold_is_blocked_and_alerted(daily, gold, spark, settings):
    """Two defects of gold itself: a census row with a zone code the spec does not know (the schema check
    refuses the build), then a movement on a centre-day the census does not hold (the file, one row per
    census centre-day, leaves it out; the reconciliation with the movement mart's totals catches it). Each
    blocks delivery and writes one alert row, however often it is re-run; once gold is repaired the next
    run delivers."""
    from spark_jobs.exchange import run

    day = (gold - timedelta(days=1)).isoformat()
    centre = _census_centres(spark, day)[0]
    zip_path = _outbox(settings, "moj") / f"population_daily_{day}_moj.zip"
    try:
        spark.sql(f"""insert into gold.fct_daily_population (census_date, centre, zone, zone_label, population)
                      values (date'{day}', '{centre}', '09', 'unknown', 1)""")
        for _ in range(2):  # the same failure twice: one alert row
            with pytest.raises(run.ExportFailed, match="'09' is not a code of zone"):
                run.export(spark, settings, "population_daily", day)
        assert list(_alerts(spark, "population_daily", day)) == ["build"]
        spark.sql(f"delete from gold.fct_daily_population where census_date = date'{day}' and zone = '09'")

        spark.sql(f"""insert into gold.fct_zone_movements (movement_date, centre, admissions, transfers, releases)
                      values (date'{day}', 'ZZ99', 1, 0, 0)""")
        with pytest.raises(run.ExportFailed, match="sum:admissions"):
            run.export(spark, settings, "population_daily", day)
        alerts = _alerts(spark, "population_daily", day)
        assert sorted(alerts) == ["build", "reconcile:movements:sum:admissions"]
        assert "in gold" in alerts["reconcile:movements:sum:admissions"]
        assert not zip_path.exists()
        assert spark.table(run.DELIVERIES).where(f"package = 'population_daily' and period = '{day}'").count() == 0
    finally:
        spark.sql(f"delete from gold.fct_daily_population where census_date = date'{day}' and zone = '09'")
        spark.sql(f"delete from gold.fct_zone_movements where movement_date = date'{day}' and centre = 'ZZ99'")
    assert run.export(spark, settings, "population_daily", day)[0].status == "delivered"
    assert zip_path.exists()


def test_open_period_refused_as_final_and_marked_provisional(gold, spark, settings, public_pem):
    from smartrehab.exchange.bag import bag_info
    from spark_jobs.exchange import run

    month = gold.strftime("%Y-%m")  # the month of gold's last census day is still open
    with pytest.raises(run.PeriodOpen, match="still open"):
        run.export(spark, settings, "kpi_monthly", month)
    assert not (_outbox(settings, "moj") / f"kpi_monthly_{month}_moj.zip").exists()
    with pytest.raises(run.PeriodOpen):
        run.export(spark, settings, "population_daily", (gold + timedelta(days=1)).isoformat())
    results = run.export(spark, settings, "kpi_monthly", month, final=False)
    info = bag_info(run.packages_dir(settings) / f"kpi_monthly_{month}_moj")
    assert results[0].status == "delivered"
    assert info["Exchange-Period-Status"] == ["provisional"] and info["Data-As-Of"] == [gold.isoformat()]
    assert_valid(_outbox(settings, "moj") / f"kpi_monthly_{month}_moj.zip", public_pem)
    row = spark.table(run.DELIVERIES).where(f"package = 'kpi_monthly' and period = '{month}'").collect()
    assert [r["status"] for r in row] == ["provisional"]


def test_period_without_data_is_reported(gold, spark, settings):
    from spark_jobs.exchange import run

    with pytest.raises(run.ExportFailed, match="no rows for the period"):
        run.export(spark, settings, "population_daily", "2000-01-01")
    assert list(_alerts(spark, "population_daily", "2000-01-01")) == ["no_data"]
    with pytest.raises(run.ExportError, match="YYYY-MM-DD"):
        run.export(spark, settings, "population_daily", "2026-11")
