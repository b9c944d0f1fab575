"""Superset dashboards as code, end to end: bundle -> import (twice) -> chart data == gold table.

Starts PostgreSQL, the SQL endpoint and Superset through smartrehab.services and leaves them
running for the tests that come after.
"""

from __future__ import annotations

import time
import zipfile

import pytest
import yaml

from smartrehab import services
from smartrehab.settings import get_settings
from smartrehab.superset import (
    BUNDLE_ROOT,
    CHART_UUIDS,
    LEADERSHIP_DASHBOARD_UUID,
    SupersetClient,
    build_bundle,
    check_assets,
    import_bundle,
)

GOLD_TABLE = "gold.fct_daily_population"
ZONE_LABELS = {"生理脱毒区", "教育适应区", "康复巩固区", "回归指导区"}
# 3 centres x 14 days x 4 zones with deterministic populations.
SEED_SQL = """
select d as census_date, c as centre, z as zone,
       case z when '01' then '生理脱毒区' when '02' then '教育适应区'
              when '03' then '康复巩固区' else '回归指导区' end as zone_label,
       cast(pmod(hash(d, c, z), 40) + 5 as bigint) as population
from (select explode(sequence(date'2026-11-01', date'2026-11-14')) as d)
cross join (select explode(array('BJ01', 'SH02', 'GZ03')) as c)
cross join (select explode(array('01', '02', '03', '04')) as z)
"""


@pytest.fixture(scope="session")
def superset_stack():
    """PostgreSQL (metastore), the SQL endpoint and Superset; no-ops when already running."""
    s = get_settings()
    services.start_postgres(s)
    services.ensure_metastore(s)
    services.start_thrift(s)
    services.start_superset(s)
    return s


@pytest.fixture(scope="session")
def gold_population(superset_stack):
    """The pipeline's gold table when it has been built; else a small one of the same schema.

    The fallback is a Delta table made through the SQL endpoint (no Spark job of its own);
    dbt's table materialisation replaces it when the pipeline runs.
    """
    s = superset_stack
    hive_rows(s, f"create database if not exists gold location '{s.warehouse}/gold.db'")
    if not hive_rows(s, "show tables in gold like 'fct_daily_population'"):
        hive_rows(s, f"create table if not exists {GOLD_TABLE} using delta as {SEED_SQL}")
    return s


@pytest.fixture(scope="session")
def client(superset_stack):
    return SupersetClient.from_settings(superset_stack)


@pytest.fixture(scope="session")
def imported(client, gold_population):
    started = time.monotonic()
    import_bundle(gold_population, log=lambda _msg: None)
    print(f"import_bundle took {time.monotonic() - started:.1f}s")
    return client


def hive_rows(s, sql: str) -> list[tuple]:
    from smartrehab.access import endpoint

    return endpoint.rows(s, sql)  # as the pipeline's service account


def chart_rows(client: SupersetClient, chart: str) -> dict:
    body = client.chart_data(CHART_UUIDS[chart], force=True)
    assert len(body["result"]) == 1, body
    result = body["result"][0]
    assert result.get("error") is None, result
    assert GOLD_TABLE.split(".")[1] in result["query"], result["query"]
    return result


def test_bundle_layout():
    settings = get_settings()
    assert check_assets(settings.superset_assets_dir) == []
    bundle = build_bundle(settings)
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        assert all(n.startswith(BUNDLE_ROOT + "/") for n in names)
        assert f"{BUNDLE_ROOT}/metadata.yaml" in names
        assert f"{BUNDLE_ROOT}/databases/smartrehab_sql_endpoint.yaml" in names
        assert f"{BUNDLE_ROOT}/datasets/smartrehab_sql_endpoint/fct_daily_population.yaml" in names
        database = yaml.safe_load(zf.read(f"{BUNDLE_ROOT}/databases/smartrehab_sql_endpoint.yaml"))
        dashboard = yaml.safe_load(zf.read(f"{BUNDLE_ROOT}/dashboards/leadership_overview.yaml"))
    from smartrehab.access import directory

    password = directory.user_password(settings, "svc.superset")
    assert database["sqlalchemy_uri"] == (f"hive://svc.superset:{password}@{settings.thrift_host}:"
                                          f"{settings.thrift_port}/gold?auth=LDAP")
    assert database["allow_dml"] is False and database["expose_in_sqllab"] is True
    chart_nodes = [n for n in dashboard["position"].values() if isinstance(n, dict) and n["type"] == "CHART"]
    assert set(CHART_UUIDS.values()) <= {n["meta"]["uuid"] for n in chart_nodes}


@pytest.mark.services
def test_import_is_idempotent(imported, superset_stack):
    client, settings = imported, superset_stack

    def counts():
        return {kind: len(getattr(client, kind)()) for kind in ("dashboards", "charts", "datasets", "databases")}

    before = counts()
    started = time.monotonic()
    import_bundle(settings, log=lambda _msg: None)
    print(f"second import_bundle took {time.monotonic() - started:.1f}s")
    assert counts() == before
    # The REST assets import overwrites every object in place: still no duplicates.
    client.import_assets(build_bundle(settings))
    assert counts() == before

    ours = [d for d in client.dashboards() if d.get("uuid") == LEADERSHIP_DASHBOARD_UUID]
    assert len(ours) == 1, ours
    assert ours[0]["slug"] == "leadership-overview"
    charts = client.get(f"/api/v1/dashboard/{ours[0]['id']}/charts")["result"]
    chart_ids = {client.chart_id(u) for u in CHART_UUIDS.values()}
    assert chart_ids <= {c["id"] for c in charts}


@pytest.mark.services
def test_population_chart_matches_gold_table(imported, gold_population):
    settings = gold_population
    [(expected_sum, expected_rows, days)] = hive_rows(
        settings, f"select sum(population), count(*), count(distinct census_date) from {GOLD_TABLE}")
    assert expected_rows and expected_rows > 0, f"{GOLD_TABLE} is empty: run the pipeline first"

    result = chart_rows(imported, "population_trend_by_zone")
    rows = result["data"]
    assert len(rows) == days * len(ZONE_LABELS)  # one point per day and zone
    assert {r["zone_label"] for r in rows} == ZONE_LABELS
    assert sum(r["census_daily"] for r in rows) == expected_sum


@pytest.mark.services
def test_current_population_is_latest_day(imported, gold_population):
    settings = gold_population
    # (not `where census_date = (select max(census_date) ...)`: Delta's metadata-only MAX on a
    # DATE column fails on the Thrift server with a LocalDate/java.sql.Date ClassCastException)
    [(_day, latest)] = hive_rows(
        settings,
        f"select census_date, sum(population) from {GOLD_TABLE} group by census_date order by census_date desc limit 1")
    rows = chart_rows(imported, "current_population")["data"]
    last = max(rows, key=lambda r: r["census_date"])
    assert last["census_daily"] == latest


@pytest.mark.services
def test_sql_endpoint_lists_gold_tables(imported):
    """The Spark SHOW TABLES fix in infra/superset_config.py: table names, not the schema name."""
    db = next(d for d in imported.databases() if d["database_name"] == "smartrehab_sql_endpoint")
    tables = imported.get(f"/api/v1/database/{db['id']}/tables/", q="(force:!t,schema_name:gold)")["result"]
    names = {t["value"] for t in tables}
    assert "fct_daily_population" in names
    assert "gold" not in names


@pytest.mark.services
def test_every_registry_indicator_is_a_described_superset_metric(imported):
    """The import brings in every generated dataset (also those no chart uses yet) with the registry's
    metric names, expressions and descriptions."""
    settings = get_settings()
    registry = yaml.safe_load((settings.dbt_dir / "indicators" / "indicators.yml").read_text(encoding="utf-8"))
    ids = {d["table_name"]: d["id"] for d in imported.datasets() if d.get("schema") == "gold"}
    for ind in registry["indicators"]:
        assert ind["model"] in ids, f"dataset gold.{ind['model']} was not imported"
        detail = imported.get(f"/api/v1/dataset/{ids[ind['model']]}")["result"]
        metric = next((m for m in detail["metrics"] if m["metric_name"] == ind["id"]), None)
        assert metric is not None, f"{ind['model']} has no metric {ind['id']}"
        assert metric["expression"] == ind["superset_metric"]
        assert ind["definition"] in metric["description"]
        assert metric["verbose_name"] == f"{ind['name_zh']} / {ind['name_en']}"
