"""The SQL endpoint as an analyst, a researcher and the pipeline meet it: LDAP login, the grants of
infra/access/roles.yaml checked on every analysed plan, and every statement in the audit trail.

Real pieces only: the embedded slapd, the Spark Thrift Server of the tests' var dir with the EndpointAccess
extension compiled from smartrehab/access/jvm/, PyHive over SASL PLAIN.
"""

from __future__ import annotations

from contextlib import closing

import pytest

from smartrehab import audit
from smartrehab.access import directory as d
from smartrehab.access import endpoint

pytestmark = pytest.mark.services

PROBE_GOLD = "gold.endpoint_probe"
PROBE_BRONZE = "bronze.endpoint_probe"
IDENTITY = "silver.restricted_identity"


def run(s, uid: str, sql: str) -> list[tuple]:
    with closing(endpoint.connect(s, uid)) as conn, closing(conn.cursor()) as cur:
        cur.execute(sql)
        return cur.fetchall() if cur.description else []


def refused(s, uid: str, sql: str) -> str:
    from pyhive.exc import OperationalError

    with pytest.raises(OperationalError) as info:  # with the server's message
        run(s, uid, sql)
    return str(info.value)


@pytest.fixture(scope="module")
def endpoint_up(sql_endpoint):
    s = sql_endpoint
    for db in ("gold", "bronze", "silver"):
        run(s, endpoint.PIPELINE_ACCOUNT, f"create database if not exists {db} location '{s.warehouse}/{db}.db'")
    run(s, endpoint.PIPELINE_ACCOUNT, f"create or replace table {PROBE_GOLD} using delta as "
                                      "select id, id % 3 as centre_no from range(10)")
    run(s, endpoint.PIPELINE_ACCOUNT, f"create or replace table {PROBE_BRONZE} using delta as "
                                      "select id, concat('secret-', id) as payload from range(5)")
    made_identity = not run(s, endpoint.PIPELINE_ACCOUNT, "show tables in silver like 'restricted_identity'")
    if made_identity:  # the pipeline has not run yet in this session: a stand-in, dropped afterwards
        run(s, endpoint.PIPELINE_ACCOUNT, f"create table {IDENTITY} using delta as "
                                          "select 'p1' as person_key, '张三' as name")
    yield s
    for table in (PROBE_GOLD, PROBE_BRONZE) + ((IDENTITY,) if made_identity else ()):
        run(s, endpoint.PIPELINE_ACCOUNT, f"drop table if exists {table}")


def test_a_login_needs_the_directory_password(endpoint_up):
    s = endpoint_up
    assert run(s, "fenxi.01", "select 1") == [(1,)]
    from pyhive import hive
    from thrift.transport.TTransport import TTransportException

    for uid, password in (("fenxi.01", "wrong"), ("nobody.here", "x"), ("fenxi.01", "")):
        with pytest.raises(TTransportException):  # refused at the SASL handshake
            endpoint.connect(s, uid, password=password).close()
    with pytest.raises(TTransportException):  # the old way in: any user name, no password
        hive.connect(host=s.thrift_host, port=s.thrift_port, username="analyst").cursor().execute("select 1")


def test_the_analyst_reads_gold_but_no_identity_and_no_bronze_however_the_query_is_written(endpoint_up):
    s = endpoint_up
    assert run(s, "fenxi.01", f"select count(*) from {PROBE_GOLD}") == [(10,)]
    assert "may not read silver.restricted_identity" in refused(s, "fenxi.01", f"select * from {IDENTITY}")
    assert "may not read bronze.endpoint_probe" in refused(s, "fenxi.01", f"select * from {PROBE_BRONZE}")
    # hidden in a subquery, a join, a CTE or a temporary view: still the same relation underneath
    for sql in (f"select * from {PROBE_GOLD} where id in (select id from {PROBE_BRONZE})",
                f"select g.id, b.payload from {PROBE_GOLD} g join {PROBE_BRONZE} b on g.id = b.id",
                f"with x as (select * from {IDENTITY}) select count(*) from x"):
        assert "may not read" in refused(s, "fenxi.01", sql), sql
    with closing(endpoint.connect(s, "fenxi.01")) as conn, closing(conn.cursor()) as cur:
        cur.execute(f"create temporary view mine as select * from {PROBE_GOLD} where id < 3")
        cur.execute("select count(*) from mine")
        assert cur.fetchall() == [(3,)]  # a temporary view of one's own is a query, not a change
        from pyhive.exc import OperationalError

        with pytest.raises(OperationalError, match="may not read bronze.endpoint_probe"):
            cur.execute(f"create temporary view v as select * from {PROBE_BRONZE}")
            cur.execute("select * from v")


def test_only_the_pipeline_writes_and_reads_restricted_tables(endpoint_up):
    s = endpoint_up
    for sql in (f"create table gold.analyst_copy using delta as select * from {PROBE_GOLD}",
                f"insert into {PROBE_GOLD} values (99, 0)", f"drop table {PROBE_GOLD}",
                f"delete from {PROBE_GOLD} where id = 1"):
        assert "may only read" in refused(s, "fenxi.01", sql), sql
    assert run(s, "fenxi.01", f"select count(*) from {PROBE_GOLD}") == [(10,)]
    assert len(run(s, endpoint.PIPELINE_ACCOUNT, f"select * from {PROBE_BRONZE}")) == 5
    # view-based access: a role granted a view (the pipeline made it) reads it, not the table under it
    run(s, endpoint.PIPELINE_ACCOUNT, f"create or replace view gold.endpoint_probe_view as select id from {PROBE_BRONZE}")
    try:
        assert len(run(s, "fenxi.01", "select * from gold.endpoint_probe_view")) == 5
        assert "may not read bronze.endpoint_probe" in refused(s, "fenxi.01", f"select * from {PROBE_BRONZE}")
    finally:
        run(s, endpoint.PIPELINE_ACCOUNT, "drop view if exists gold.endpoint_probe_view")
    # the researcher has research tables only, the centre leader nothing on the endpoint
    assert "may not read gold.endpoint_probe" in refused(s, "yanjiu.01", f"select * from {PROBE_GOLD}")
    assert "may not read gold.endpoint_probe" in refused(s, "suo.bj01", f"select * from {PROBE_GOLD}")
    # reading the metadata is allowed: tools list schemas and tables before they query
    assert ("gold", "endpoint_probe", False) in {tuple(r) for r in run(s, "fenxi.01", "show tables in gold")}


def test_every_statement_allowed_or_refused_is_in_the_chained_audit_trail(endpoint_up):
    s = endpoint_up
    audit.ingest_spool(s)
    before = audit._last(s)[0] if audit._exists(s) else 0
    marker = "audit-marker-7f3a"
    run(s, "fenxi.01", f"select '{marker}' as m, count(*) from {PROBE_GOLD}")
    # count(*): resolves on the stand-in and on the pipeline's real table alike, so the refusal is the access check's
    assert "may not read" in refused(s, "fenxi.01", f"select '{marker}' as m, count(*) from {IDENTITY}")
    assert audit.ingest_spool(s) >= 2
    rows = [r for r in audit._read_rows(s, f"where seq > {before}") if marker in r["statement"]]
    got = sorted((r["actor"], r["outcome"], r["tables_read"], r["tool"]) for r in rows)
    assert got == [("fenxi.01", "denied", IDENTITY, "sql_endpoint"),
                   ("fenxi.01", "success", PROBE_GOLD, "sql_endpoint")], got
    assert audit.verify(s).ok
    assert not endpoint.spool_path(s).exists()  # taken over completely


def test_a_change_in_the_directory_reaches_the_running_endpoint(endpoint_up):
    s = endpoint_up
    # The pipeline account moved out of its group: after a refresh of the plan it can read nothing.
    plan = endpoint.plan_path(s).read_text(encoding="utf-8")
    try:
        lines = [ln for ln in plan.splitlines() if not ln.startswith(endpoint.PIPELINE_ACCOUNT + "\t")]
        endpoint.plan_path(s).write_text("\n".join(lines) + "\n", encoding="utf-8")
        assert "no grants" in refused(s, endpoint.PIPELINE_ACCOUNT, f"select * from {PROBE_GOLD}")
    finally:
        endpoint.refresh(s)
    assert len(run(s, endpoint.PIPELINE_ACCOUNT, f"select * from {PROBE_GOLD}")) == 10
    assert d.user_password(s, "fenxi.01")  # the demo password lives in the secrets, never in the repo


def test_statements_running_at_once_are_all_answered_and_audited(endpoint_up):
    """A dashboard sends its charts' queries together: the spool takes them all, none fails on its lock."""
    from concurrent.futures import ThreadPoolExecutor

    s = endpoint_up
    audit.ingest_spool(s)
    before = audit._last(s)[0] if audit._exists(s) else 0
    sql = [f"select {i} as n, count(*) from {PROBE_GOLD} where id >= {i % 5}" for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda q: run(s, "fenxi.01", q), sql))
    assert [g[0][0] for g in got] == list(range(8))
    audit.ingest_spool(s)
    statements = {r["statement"] for r in audit._read_rows(s, f"where seq > {before}")}
    assert set(sql) <= statements
