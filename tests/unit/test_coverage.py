from __future__ import annotations

from smartrehab.catalog import load_catalog
from smartrehab.coverage import COLUMNS, coverage_rows, render_csv


def _manifest():
    def model(name, deps, sql=""):
        return {"resource_type": "model", "raw_code": sql, "depends_on": {"nodes": deps}}

    return {"nodes": {
        "model.p.stg_person": model("stg_person", ["source.p.silver.person"], "select person_pk, sex from x"),
        "model.p.int_a": model("int_a", ["model.p.stg_person"]),
        "model.p.fct_b": model("fct_b", ["model.p.int_a"]),
        "model.p.other": model("other", ["source.p.silver.admission"], "select admission_id from y"),
        "test.p.t1": {"resource_type": "test", "depends_on": {"nodes": ["model.p.stg_person"]}},
    }}


def test_items_follow_staging_models_and_their_descendants():
    rows = {r["item_code"]: r for r in coverage_rows(load_catalog(), _manifest())}
    assert len(rows) == 1162
    sex = rows["SZ-0004"]
    assert sex["bronze_column"] == "bronze.legacy_rows._raw['XB'] (_legacy_table = 'ZJ_RYJBXX')" and sex["silver_column"] == "silver.person.sex"
    assert sex["staging_models"] == "stg_person" and sex["downstream_models"] == "fct_b;int_a"
    name = rows["SZ-0002"]  # not selected by the staging model: used by nothing
    assert name["staging_models"] == "" and name["downstream_models"] == ""
    assert rows["SZ-0013"]["staging_models"] == "other"


def test_csv_has_a_header_and_one_line_per_item():
    text = render_csv(coverage_rows(load_catalog(), _manifest()))
    lines = text.splitlines()
    assert lines[0] == ",".join(COLUMNS) and len(lines) == 1163
