"""The dashboards as files: generated files current, names not codes, filters everywhere, no identities."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "superset_assets"


@pytest.fixture(scope="module")
def render():
    spec = importlib.util.spec_from_file_location("assets_render", ASSETS / "render.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _load(kind: str) -> list[dict]:
    return [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted((ASSETS / kind).rglob("*.yaml"))]


def test_generated_files_are_current(render):
    assert render.main(["--check"]) == 0, "run python superset_assets/render.py"


def test_every_dashboard_filters_by_centre_name_and_date():
    for d in _load("dashboards"):
        filters = d["metadata"]["native_filter_configuration"]
        kinds = {(f["filterType"], (f["targets"][0].get("column") or {}).get("name")) for f in filters}
        assert ("filter_select", "centre_name") in kinds, d["slug"]
        assert ("filter_time", None) in kinds, d["slug"]


def test_charts_group_by_centre_name_never_by_code():
    for chart in _load("charts"):
        p = chart["params"]
        used = [p.get("x_axis")] + list(p.get("groupby") or []) + list(p.get("all_columns") or [])
        assert "centre" not in used, f"{chart['slice_name']} shows centre codes: use centre_name"
        # query_context (the chart-data API, reports) asks for the same columns as params
        q = json.loads(chart["query_context"])["queries"][0]
        names = [c if isinstance(c, str) else c["sqlExpression"] for c in q["columns"]]
        assert "centre" not in names, chart["slice_name"]


def test_centre_names_come_from_the_code_table(render):
    expr = render.REG.centre_name_expression()
    for line in (ROOT / "catalog" / "code_tables" / "centre.csv").read_text(encoding="utf-8").splitlines()[1:]:
        code, name = line.split(",")[:2]
        assert f"WHEN '{code}' THEN '{name}'" in expr
    for ds in _load("datasets"):
        names = {c["column_name"]: c for c in ds["columns"]}
        if ds["table_name"] == "centre_list":  # the centre filter's values: the code table itself, inline
            assert names["centre_name"]["expression"] is None
            for line in (ROOT / "catalog" / "code_tables" / "centre.csv").read_text(encoding="utf-8").splitlines()[1:]:
                code, name = line.split(",")[:2]
                assert f"select '{code}' as centre, '{name}' as centre_name" in ds["sql"]
        elif "centre" in names:
            assert names["centre_name"]["expression"] == expr, ds["table_name"]


def test_risk_list_has_pseudonyms_only(render):
    """风险名单 shows keyed pseudonyms and admission numbers, never names, ID numbers or other identifiers."""
    ds = render.render_dataset("risk_list_current", render.DATASETS["risk_list_current"])
    forbidden = ("name_pk", "id_number", "phone", "address", "restricted_identity", "silver.person")
    assert not any(f in ds["sql"] for f in forbidden)
    assert {c["column_name"] for c in ds["columns"]} <= {
        "person_pk", "pseudonym", "admission_id", "centre", "centre_name", "as_of_date", "score", "risk_band", "top_factors_zh",
        "model_version"}
