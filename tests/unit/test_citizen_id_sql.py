"""The GB 11643 rule as Spark SQL agrees with the Python rule, and legacy conform quarantines by it."""

from __future__ import annotations

from datetime import date

import pytest
from citizen_id_cases import AS_OF, CASES, EMPTY

from smartrehab import citizen_id as cid
from smartrehab.catalog import load_catalog
from spark_jobs.common.pseudonym import pseudonym
from spark_jobs.common.sql import lit
from spark_jobs.legacy.conform import META, conform, converted_column

pytestmark = pytest.mark.spark

KEY = "ab" * 32


def test_sql_rule_agrees_with_python_on_every_case(spark):
    raws = [c[0] for c in CASES] + EMPTY + ["１１０１０５１９４９１２３１００２\u3000X", "x" * 18, "1" * 15, "0" * 18]
    df = spark.createDataFrame([(i, r) for i, r in enumerate(raws)], "i int, raw string")
    n = df.selectExpr("i", "raw", f"{cid.normalised_sql('raw')} AS n")
    f = n.selectExpr("*", f"{cid.first17_sql('n')} AS f17")
    out = f.selectExpr("i", "n", f"{cid.value_sql('n', 'f17')} AS value", f"{cid.converted_sql('n')} AS converted",
                       f"{cid.failure_sql('n', 'f17', lit(AS_OF))} AS failure")
    got = {r["i"]: r for r in out.collect()}
    for i, raw in enumerate(raws):
        want = cid.check(raw, AS_OF)
        r = got[i]
        assert r["n"] == cid.normalise(raw), raw
        if want is None:
            assert (r["value"], r["converted"], r["failure"]) == (None, None, None), raw
        else:
            assert (r["value"], r["converted"], r["failure"]) == (want.value, want.converted, want.failure), raw


def test_conform_quarantines_each_failure_with_its_rule_and_records_conversions(spark):
    catalog = load_catalog()
    table = catalog.table("ZJ_RYJBXX")
    ids = {c[0]: c for c in CASES}
    rows = []
    for line, raw in enumerate(ids, 2):
        values = {c: "" for c in table.columns}
        values.update(RYBH=f"P{line:04d}", SFZHM=raw, GXSJ="2024-01-01 10:00:00")
        rows.append({"_load_id": "L1", "_source_file": "20261120/ZJ_RYJBXX.csv", "_file_sha256": "f",
                     "_source_row": line, "_row_sha256": f"r{line}", "_parse_error": None, "_raw_line": "",
                     **values})
    schema = ", ".join([f"{c} {'int' if c == '_source_row' else 'string'}" for c in META] +
                       [f"{c} string" for c in table.columns])
    bronze = spark.createDataFrame([tuple(r[c] for c in [*META, *table.columns]) for r in rows], schema)
    out = conform(bronze, table, catalog, KEY, small=True, as_of=AS_OF)
    flag = converted_column(table.item("SFZHM"))
    assert flag == "id_number_from_15_digits"
    got = {r["_source_row"]: r for r in out.select("_source_row", "_ok", "_rules", "_message", flag,
                                                   "id_number_pk", "_identities").collect()}
    for line, (raw, value, converted, failure) in enumerate(ids.values(), 2):
        r = got[line]
        if failure is None:
            assert r["_ok"] and r["_rules"] == [], (raw, r)
            assert r[flag] is converted
            assert r["id_number_pk"] == pseudonym(KEY, "id_number_pk", value)  # a 15-digit ID joins its 18-digit form
            assert [i["clear_value"] for i in r["_identities"] if i["domain"] == "id_number_pk"] == [value]
        else:
            assert not r["_ok"] and r["_rules"] == [f"{failure}:SFZHM"], (raw, r)
            assert r["_message"] == f"20261120/ZJ_RYJBXX.csv line {line}: SFZHM {cid.FAILURES[failure]}"
            assert cid.normalise(raw) not in r["_message"]  # the message never shows the number


def test_conform_bounds_birth_dates_by_its_as_of_day(spark):
    catalog = load_catalog()
    table = catalog.table("ZJ_RYJBXX")
    values = {c: "" for c in table.columns}
    values.update(RYBH="P1", SFZHM="110105203012310026", GXSJ="2024-01-01 10:00:00")
    meta = ("L1", "20261120/ZJ_RYJBXX.csv", "f", 2, "r2", None, "")
    schema = ", ".join([f"{c} {'int' if c == '_source_row' else 'string'}" for c in META] +
                       [f"{c} string" for c in table.columns])
    bronze = spark.createDataFrame([(*meta, *(values[c] for c in table.columns))], schema)
    rules = {d: conform(bronze, table, catalog, KEY, small=True, as_of=d).first()["_rules"]
             for d in (date(2030, 12, 30), date(2030, 12, 31))}
    assert rules == {date(2030, 12, 30): ["id_birth_future:SFZHM"], date(2030, 12, 31): []}
