"""The indicator registry is the one source of the dbt docs, the Superset metrics and the export dictionary.

No JVM: these read the committed files. The metric SQL itself is checked against the built gold tables
in tests/integration/test_dbt_indicators.py.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RENDER = ROOT / "dbt" / "indicators" / "render.py"


@pytest.fixture(scope="module")
def render():
    spec = importlib.util.spec_from_file_location("indicator_render", RENDER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def indicators(render):
    return render.load()


def test_generated_files_are_current():
    res = subprocess.run([sys.executable, str(RENDER), "--check"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_check_fails_when_the_registry_changes(render, indicators, monkeypatch):
    changed = [dict(ind) for ind in indicators]
    changed[0]["definition"] += " (edited)"
    monkeypatch.setattr(render, "load", lambda path=render.REGISTRY: changed)
    files = render.outputs()
    stale = [p for p, text in files.items() if p.read_bytes().decode("utf-8") != text]
    assert render.DOCS in stale and render.DICTIONARY in stale
    first_dataset = render.DATASETS / f"{changed[0]['model']}.yaml"
    assert first_dataset in stale


def _indicator_datasets(render) -> list:
    """The dataset files this renderer writes (superset_assets/render.py writes the others)."""
    return [p for p in sorted(render.DATASETS.glob("*.yaml"))
            if p.read_text(encoding="utf-8").startswith(render.GENERATED)]


def test_every_indicator_is_a_superset_metric_with_the_registry_text(render, indicators):
    metrics = {}
    for path in _indicator_datasets(render):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for m in doc.get("metrics") or []:
            assert m["metric_name"] not in metrics, f"metric {m['metric_name']} defined twice"
            metrics[m["metric_name"]] = (doc["table_name"], m)
    for ind in indicators:
        table, m = metrics[ind["id"]]
        assert table == ind["model"]
        assert m["expression"] == ind["superset_metric"]
        assert ind["name_zh"] in m["verbose_name"] and ind["name_en"] in m["verbose_name"]
        assert ind["definition"] in m["description"] and ind["formula"] in m["description"]
        assert m["d3format"] == ind["d3format"]
        assert (m["warning_text"] is None) == ind["official"]


def test_dataset_columns_come_from_the_dbt_yaml(render):
    models = render.load_models()
    for path in _indicator_datasets(render):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        model = models[doc["table_name"]]
        physical = [c for c in doc["columns"] if c["expression"] is None]
        assert [c["column_name"] for c in physical] == [c["name"] for c in model["columns"]]
        computed = {c["column_name"]: c["expression"] for c in doc["columns"] if c["expression"] is not None}
        has_centre = any(c["name"] == "centre" for c in model["columns"])
        expected = {"centre_name": render.centre_name_expression()} if has_centre else {}
        for c in model["columns"]:
            labels = (c.get("meta") or {}).get("value_labels")
            if labels:
                expected[f"{c['name']}_label"] = render.value_label_column(c, labels)["expression"]
                assert all(f"THEN '{v}'" in expected[f"{c['name']}_label"] for v in labels.values())
        assert computed == expected, path.name
        dates = [c["column_name"] for c in doc["columns"] if c["is_dttm"]]
        assert doc["main_dttm_col"] == (dates[0] if dates else None)


def test_chart_metrics_are_registry_metrics(render, indicators):
    """A chart may only use metrics its dataset defines: on a generated dataset, indicators of the registry."""
    ids = {ind["id"] for ind in indicators}
    datasets = {}
    for path in (ROOT / "superset_assets" / "datasets").rglob("*.yaml"):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        datasets[doc["uuid"]] = (path.read_text(encoding="utf-8").startswith(render.GENERATED),
                                 {m["metric_name"] for m in doc.get("metrics") or []})
    for path in sorted((ROOT / "superset_assets" / "charts").glob("*.yaml")):
        chart = yaml.safe_load(path.read_text(encoding="utf-8"))
        params = chart["params"]
        used = [m for key in ("metrics", "percent_metrics") for m in params.get(key) or []]
        used += [params[key] for key in ("metric", "secondary_metric", "x", "y", "size") if params.get(key)]
        generated, defined = datasets[chart["dataset_uuid"]]
        assert used or params.get("query_mode") == "raw", (path.name, "no metric")
        assert all(isinstance(m, str) for m in used), (path.name, "ad-hoc metric: define it in the dataset", used)
        assert set(used) <= (ids & defined if generated else defined), (path.name, used)


def test_bundle_with_generated_datasets_passes_the_asset_checks():
    from smartrehab.superset import check_assets

    assert check_assets(ROOT / "superset_assets") == []


def test_export_dictionary_has_one_row_per_indicator(render, indicators):
    raw = render.DICTIONARY.read_bytes().decode("utf-8")
    assert raw.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(raw[1:])))
    assert [r["indicator_code/指标编码"] for r in rows] == [ind["id"] for ind in indicators]
    models = render.load_models()
    for row, ind in zip(rows, indicators, strict=True):
        assert row["source_table/来源表"] == f"gold.{ind['model']}"
        col = next(c for c in models[ind["model"]]["columns"] if c["name"] == ind["column"])
        assert row["data_type/数据类型"] == col["data_type"]
        assert row["formula/计算公式"] == ind["formula"]


def test_a_column_without_a_type_is_refused(render, indicators):
    model = {"name": "fct_x", "columns": [{"name": "a"}]}
    ind = dict(indicators[0], model="fct_x", column="a")
    with pytest.raises(ValueError, match="data_type"):
        render.render_dataset(model, [ind], {ind["id"]: ind})
