"""Superset with LDAP login, roles and row-level security from infra/access/roles.yaml, and its audit records.

Real pieces only: the embedded slapd (directory fixture), PostgreSQL, the SQL endpoint and Superset of the tests'
var dir, the dashboards imported from superset_assets/ (which applies the roles and RLS), people logging in over
Superset's REST API with their directory passwords.
"""

from __future__ import annotations

import csv

import pytest
import requests

from smartrehab import audit, services
from smartrehab.access import directory as d
from smartrehab.access.roles import load_access
from smartrehab.settings import REPO_ROOT
from smartrehab.superset import CHART_UUIDS, SupersetClient, SupersetError, import_bundle

pytestmark = pytest.mark.services

GOLD_TABLE = "gold.fct_daily_population"
with (REPO_ROOT / "catalog" / "code_tables" / "centre.csv").open(encoding="utf-8") as _fh:
    CENTRE_NAMES = {row["code"]: row["label_zh"] for row in csv.DictReader(_fh)}
# 3 centres x 3 days x 2 zones, used only when the pipeline has not built the table.
SEED_SQL = """
select d as census_date, c as centre, z as zone,
       case z when '01' then '生理脱毒区' else '教育适应区' end as zone_label,
       cast(pmod(hash(d, c, z), 40) + 5 as bigint) as population
from (select explode(sequence(date'2026-11-01', date'2026-11-03')) as d)
cross join (select explode(array('BJ01', 'BJ02', 'GZ03')) as c)
cross join (select explode(array('01', '02')) as z)
"""


def hive_rows(s, sql: str) -> list[tuple]:
    from smartrehab.access import endpoint

    return endpoint.rows(s, sql)  # as the pipeline's service account


@pytest.fixture(scope="session")
def access_stack(directory):
    s = directory
    services.start_postgres(s)
    services.ensure_metastore(s)
    services.start_thrift(s)
    services.start_superset(s)
    hive_rows(s, f"create database if not exists gold location '{s.warehouse}/gold.db'")
    if not hive_rows(s, "show tables in gold like 'fct_daily_population'"):
        hive_rows(s, f"create table if not exists {GOLD_TABLE} using delta as {SEED_SQL}")
    import_bundle(s, log=lambda _m: None)  # applies the roles and RLS (smartrehab.access.superset.apply)
    return s


@pytest.fixture(scope="session")
def access(access_stack):
    return load_access(access_stack.access_roles_file, access_stack.catalog_dir)


@pytest.fixture(scope="session")
def centres_in_table(access_stack) -> set[str]:
    return {r[0] for r in hive_rows(access_stack, f"select distinct centre from {GOLD_TABLE}")}


def person(s, uid: str, password: str | None = None) -> SupersetClient:
    return SupersetClient(f"http://127.0.0.1:{s.superset_port}", uid,
                          d.user_password(s, uid) if password is None else password, provider="ldap")


def login_status(s, uid: str, password: str) -> int:
    res = requests.post(f"http://127.0.0.1:{s.superset_port}/api/v1/security/login", timeout=60,
                        json={"username": uid, "password": password, "provider": "ldap"})
    return res.status_code


def centres_seen(client: SupersetClient, dataset_id: int, **extra) -> set[str]:
    body = {"datasource": {"id": dataset_id, "type": "table"}, "force": True, "result_format": "json",
            "result_type": "full",
            "queries": [{"columns": ["centre"], "metrics": [{"expressionType": "SQL", "sqlExpression": "count(*)",
                                                             "label": "n"}], "row_limit": 1000, **extra}]}
    res = client.post("/api/v1/chart/data", json=body)
    return {row["centre"] for row in res["result"][0]["data"]}


@pytest.fixture(scope="session")
def dataset_id(access_stack) -> int:
    admin = SupersetClient.from_settings(access_stack)
    return next(x["id"] for x in admin.datasets() if x["table_name"] == "fct_daily_population")


def test_each_person_gets_the_superset_role_of_their_directory_group(access_stack, access):
    s = access_stack
    for u in access.demo_users:
        role = access.roles[u.role]
        if not role.person:
            # Service accounts live under ou=services: Superset binds people only, so the login is refused.
            assert login_status(s, u.uid, d.user_password(s, u.uid)) == 401, u.uid
            continue
        client = person(s, u.uid)  # the directory password is accepted
        try:
            roles = set(client.get("/api/v1/me/roles/")["result"]["roles"])
        except SupersetError as exc:  # a person with no Superset role may not even read their own roles
            assert not role.in_superset and ": 40" in str(exc), (u.uid, exc)
            roles = set()
        want = {access.group(u.group_cn).superset_name} if role.in_superset else set()
        assert roles - {"Public"} == want, (u.uid, roles)


def test_centre_leader_sees_only_their_centre_even_when_filtering_for_another(access_stack, dataset_id,
                                                                             centres_in_table):
    s = access_stack
    assert {"BJ01"} < centres_in_table
    leader = person(s, "suo.bj01")
    assert centres_seen(leader, dataset_id) == {"BJ01"}
    # A forged filter for another centre, or one that tries to widen the WHERE clause, still ANDs with the RLS.
    assert centres_seen(leader, dataset_id, filters=[{"col": "centre", "op": "IN", "val": ["BJ02", "GZ03"]}]) == set()
    assert centres_seen(leader, dataset_id, extras={"where": "1 = 1 or centre <> 'BJ01'"}) == {"BJ01"}
    # The saved chart of the dashboard, as a leader opens it.
    data = leader.chart_data(CHART_UUIDS["centre_zone_table"], force=True)["result"][0]
    assert "centre = 'BJ01'" in data["query"] and {row["centre_name"] for row in data["data"]} == {CENTRE_NAMES["BJ01"]}
    assert centres_seen(person(s, "ju.lingdao"), dataset_id) == centres_in_table
    assert centres_seen(person(s, "fenxi.01"), dataset_id) == centres_in_table


def test_administrators_see_no_business_rows(access_stack, dataset_id):
    s = access_stack
    assert centres_seen(person(s, "xt.admin"), dataset_id) == set()  # content rights, deny-by-default rows
    for uid in ("sj.admin", "aq.admin", "yanjiu.01"):  # no data access at all
        with pytest.raises(SupersetError, match=r": 40[13]"):
            centres_seen(person(s, uid), dataset_id)


def _records(s, since: int) -> list[dict]:
    return [r for r in audit._read_rows(s, f"where seq > {since}")]


def _last_seq(s) -> int:
    return audit._last(s)[0] if audit._exists(s) else 0


def test_refused_logins_are_refused_and_audited(access_stack):
    s = access_stack
    before = _last_seq(s)
    assert login_status(s, "suo.bj01", "not-the-password") == 401
    assert login_status(s, "nobody.here", "whatever") == 401
    assert login_status(s, "ju.lingdao", d.user_password(s, "ju.lingdao")) == 200
    logins = [(r["actor"], r["outcome"]) for r in _records(s, before) if r["event_type"] == "login"]
    assert logins == [("suo.bj01", "failure"), ("nobody.here", "failure"), ("ju.lingdao", "success")]
    assert all(r["client_addr"] == "127.0.0.1" for r in _records(s, before))


def test_dashboard_views_chart_queries_and_sql_are_audited_and_the_chain_holds(access_stack):
    s = access_stack
    leader = person(s, "suo.bj02")
    before = _last_seq(s)
    dash = leader.get("/api/v1/dashboard/leadership-overview")["result"]
    leader.chart_data(CHART_UUIDS["population_by_centre"], force=True)
    rows = _records(s, before)
    kinds = {(r["event_type"], r["actor"]) for r in rows}
    assert {("dashboard_view", "suo.bj02"), ("chart_query", "suo.bj02"), ("sql", "suo.bj02")} <= kinds, kinds
    view = next(r for r in rows if r["event_type"] == "dashboard_view")
    assert view["object"] == f"dashboard:{dash['id']}" and view["client_addr"] == "127.0.0.1"
    sql = next(r for r in rows if r["event_type"] == "sql")
    assert "fct_daily_population" in sql["statement"] and "BJ02" in sql["statement"]
    assert "gold.fct_daily_population" in sql["tables_read"].split(",")
    verdict = audit.verify(s)
    assert verdict.ok, verdict.problems


def test_audit_log_is_a_table_of_the_sql_endpoint(access_stack):
    s = access_stack
    audit.register_on_endpoint(s)  # what `smartrehab serve` does after starting the endpoint
    (n,), = hive_rows(s, "select count(*) from audit.access_log")
    assert n == audit.verify(s).records > 0
    props = dict(hive_rows(s, "show tblproperties audit.access_log"))
    assert props.get("delta.appendOnly") == "true"
