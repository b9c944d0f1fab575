"""Render the indicator registry (indicators.yml) into everything that describes an indicator.

One source, three generated artefacts, all committed so that a review shows what changed:

* ``dbt/models/docs/indicators.md``: a ``{% docs indicator_<id> %}`` block per indicator; the column
  an indicator lives in uses ``description: "{{ doc('indicator_<id>') }}"`` in its model's YAML.
* ``superset_assets/datasets/smartrehab_sql_endpoint/<model>.yaml``: one Superset dataset per gold
  model that holds an indicator. Its metrics are the registry's (name, definition, formula, format);
  its columns, types and descriptions come from the model's dbt YAML.
* ``dbt/indicators/export_dictionary.csv``: the data dictionary sent with the Ministry exports
  (UTF-8 with BOM, so that spreadsheet programs show the Chinese text).

    python dbt/indicators/render.py           # rewrite the generated files
    python dbt/indicators/render.py --check   # exit 1 when any of them is out of date
"""

from __future__ import annotations

import csv
import io
import re
import sys
import uuid
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
REGISTRY = HERE / "indicators.yml"
MARTS = HERE.parent / "models" / "marts"
DOCS = HERE.parent / "models" / "docs" / "indicators.md"
DATASETS = ROOT / "superset_assets" / "datasets" / "smartrehab_sql_endpoint"
DICTIONARY = HERE / "export_dictionary.csv"
CENTRES = ROOT / "catalog" / "code_tables" / "centre.csv"

DATABASE_UUID = "be6fa3c5-10cb-4894-ad49-0479ce618827"  # superset_assets/databases/smartrehab_sql_endpoint.yaml
UUID_NAMESPACE = uuid.UUID("5d0f7e52-3c61-4d0b-9d7e-6f1f4f9a2c11")  # fixed: dataset UUIDs never change
GENERATED = "# Generated from dbt/indicators/indicators.yml and the dbt model YAML by dbt/indicators/render.py: do not edit.\n"
DIRECTION = {"up": "higher is better", "down": "lower is better", "none": "neither direction is better"}
DIRECTION_ZH = {"up": "越高越好", "down": "越低越好", "none": "无好坏方向"}
DATE_TYPES = {"date", "timestamp", "timestamp_ntz"}
# Spark's catalog names (as dbt's catalog.json and DESCRIBE print them) -> SQL type names Superset knows
SQL_TYPES = {"long": "BIGINT", "integer": "INT", "short": "SMALLINT", "byte": "TINYINT"}
_DOC_REF = re.compile(r"\{\{\s*doc\('indicator_([a-z0-9_]+)'\)\s*\}\}")


def load(path: Path = REGISTRY) -> list[dict]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["indicators"]


def registry_version(path: Path = REGISTRY) -> int:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["version"]


def load_models(marts: Path = MARTS) -> dict[str, dict]:
    """Every model documented in the marts' YAML files, by name."""
    models: dict[str, dict] = {}
    for path in sorted(marts.glob("*.yml")):
        for model in yaml.safe_load(path.read_text(encoding="utf-8")).get("models", []):
            models[model["name"]] = model
    return models


def doc_name(indicator_id: str) -> str:
    return f"indicator_{indicator_id}"


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _basis(ind: dict) -> str:
    return "Official indicator." if ind["official"] else "Formula defined by this project (no official one)."


def value_kind(ind: dict) -> str:
    fmt = ind["d3format"]
    if fmt.endswith("%"):
        return "ratio in [0, 1] / 比率"
    if fmt.endswith("d"):
        return "count / 计数"
    return "value / 数值"


# ---- dbt docs ---------------------------------------------------------------------------------
def render_docs(indicators: list[dict]) -> str:
    out = ["<!-- Generated from dbt/indicators/indicators.yml by dbt/indicators/render.py: do not edit. -->", ""]
    for ind in indicators:
        out += [
            f"{{% docs {doc_name(ind['id'])} %}}",
            f"**{ind['name_zh']}** ({ind['name_en']}). {ind['definition']}",
            "",
            f"Formula: `{ind['formula']}`. Grain: {ind['grain']}. Owner: {ind['owner']}. "
            f"Direction: {DIRECTION[ind['direction_of_good']]}. {_basis(ind)}"
            + (f" Note: {ind['note']}" if ind.get("note") else ""),
            "{% enddocs %}",
            "",
        ]
    return "\n".join(out)


# ---- Superset datasets ------------------------------------------------------------------------
def centre_name_expression(column: str = "centre", path: Path = CENTRES) -> str:
    """SQL that turns a centre code into its Chinese name, from the national code table (catalog/).

    Dashboards show names, not codes; the names live in the catalog's code table, so a new or renamed
    centre is a change of that file and a re-render, not of the charts. Unknown codes show as themselves.
    """
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    whens = " ".join(f"WHEN '{r['code']}' THEN '{r['label_zh']}'" for r in rows)
    return f"CASE {column} {whens} ELSE {column} END"


def centre_list_sql(path: Path = CENTRES) -> str:
    """The centres of the code table as an inline query (code, name), for the dashboards' centre filter."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return "\nunion all\n".join(f"select '{r['code']}' as centre, '{r['label_zh']}' as centre_name" for r in rows)


def centre_name_column(column: str = "centre") -> dict:
    """A computed Superset column ``centre_name`` (戒毒所名称) beside a centre code column."""
    return {
        "column_name": "centre_name",
        "verbose_name": "戒毒所 / Centre",
        "is_dttm": False,
        "is_active": True,
        "type": "STRING",
        "groupby": True,
        "filterable": True,
        "expression": centre_name_expression(column),
        "description": "戒毒所名称（代码表 catalog/code_tables/centre.csv）/ Centre name from the centre code table.",
        "python_date_format": None,
        "extra": {},
    }


def value_label_column(col: dict, labels: dict) -> dict:
    """A computed column ``<name>_label`` that shows the words of ``meta.value_labels`` instead of the codes."""
    def lit(v):
        return str(v) if isinstance(v, int) else "'" + str(v) + "'"

    whens = " ".join(f"WHEN {lit(k)} THEN '{v}'" for k, v in labels.items())
    label = (col.get("meta") or {}).get("label") or col["name"]
    return {
        "column_name": f"{col['name']}_label", "verbose_name": label, "is_dttm": False, "is_active": True,
        "type": "STRING", "groupby": True, "filterable": True,
        "expression": f"CASE {col['name']} {whens} ELSE CAST({col['name']} AS STRING) END",
        "description": f"{label}（文字）/ {col['name']} in words", "python_date_format": None, "extra": {},
    }


def dataset_uuid(model: dict) -> str:
    return str((model.get("meta") or {}).get("superset_uuid") or uuid.uuid5(UUID_NAMESPACE, f"gold.{model['name']}"))


def _column_description(text: str | None, by_id: dict[str, dict]) -> str | None:
    if not text:
        return None
    ref = _DOC_REF.fullmatch(text.strip())
    if ref:
        ind = by_id[ref.group(1)]
        return f"{ind['name_zh']} / {ind['name_en']}: {ind['definition']}"
    return _one_line(text)


def render_dataset(model: dict, indicators: list[dict], by_id: dict[str, dict]) -> dict:
    columns = model.get("columns") or []
    missing = [c["name"] for c in columns if not c.get("data_type")]
    if not columns or missing:
        raise ValueError(f"dbt model {model['name']}: every column needs a data_type in its YAML ({missing or 'no columns'})")
    indicator_of = {ind["column"]: ind for ind in indicators}
    dttm = [c["name"] for c in columns if c["data_type"] in DATE_TYPES]
    out_columns = []
    for col in columns:
        ind = indicator_of.get(col["name"])
        label = (col.get("meta") or {}).get("label") or (f"{ind['name_zh']} / {ind['name_en']}" if ind else None)
        out_columns.append({
            "column_name": col["name"],
            "verbose_name": label,
            "is_dttm": col["data_type"] in DATE_TYPES,
            "is_active": True,
            "type": SQL_TYPES.get(col["data_type"], col["data_type"]).upper(),
            "groupby": True,
            "filterable": True,
            "expression": None,
            "description": _column_description(col.get("description"), by_id),
            "python_date_format": None,
            "extra": {},
        })
    if any(c["name"] == "centre" for c in columns):
        out_columns.append(centre_name_column())
    for c in columns:  # codes a dashboard shows as words: meta.value_labels in the model's YAML
        labels = (c.get("meta") or {}).get("value_labels")
        if labels:
            out_columns.append(value_label_column(c, labels))
    metrics = [{
        "metric_name": ind["id"],
        "verbose_name": f"{ind['name_zh']} / {ind['name_en']}",
        "metric_type": None,
        "expression": ind["superset_metric"],
        "description": (f"{ind['definition']} Formula: {ind['formula']}. Grain: {ind['grain']}. "
                        f"Owner: {ind['owner']}. {DIRECTION_ZH[ind['direction_of_good']]} / "
                        f"{DIRECTION[ind['direction_of_good']]}."),
        "d3format": ind["d3format"],
        "extra": {},
        "warning_text": None if ind["official"] else f"口径为本项目定义 / {_basis(ind)} {ind.get('note') or ''}".strip(),
    } for ind in indicators]
    return {
        "table_name": model["name"],
        "schema": "gold",
        "main_dttm_col": dttm[0] if dttm else None,
        "description": f"{_one_line(model.get('description'))} Source: dbt model marts/{model['name']}.",
        "default_endpoint": None,
        "offset": 0,
        "cache_timeout": None,
        "sql": None,
        "params": None,
        "template_params": None,
        "filter_select_enabled": True,
        "fetch_values_predicate": None,
        "extra": None,
        "normalize_columns": False,
        "always_filter_main_dttm": False,
        "uuid": dataset_uuid(model),
        "database_uuid": DATABASE_UUID,
        "version": "1.0.0",
        "metrics": metrics,
        "columns": out_columns,
    }


def render_datasets(indicators: list[dict], models: dict[str, dict]) -> dict[Path, str]:
    by_id = {ind["id"]: ind for ind in indicators}
    per_model: dict[str, list[dict]] = {}
    for ind in indicators:
        if ind["model"] not in models:
            raise ValueError(f"indicator {ind['id']}: model {ind['model']} has no YAML under {MARTS}")
        per_model.setdefault(ind["model"], []).append(ind)
    out = {}
    for name, inds in sorted(per_model.items()):
        doc = render_dataset(models[name], inds, by_id)
        out[DATASETS / f"{name}.yaml"] = GENERATED + yaml.safe_dump(
            doc, allow_unicode=True, sort_keys=False, width=4096)
    return out


# ---- export dictionary ------------------------------------------------------------------------
DICTIONARY_HEADER = [
    "indicator_code/指标编码", "name_zh/中文名称", "name_en/英文名称", "definition/定义", "formula/计算公式",
    "grain/统计粒度", "owner/责任部门", "direction_of_good/方向", "basis/口径", "source_table/来源表",
    "source_column/来源字段", "data_type/数据类型", "value_kind/取值类型", "note/备注", "registry_version/注册表版本",
]


def render_dictionary(indicators: list[dict], models: dict[str, dict], version: int) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(DICTIONARY_HEADER)
    for ind in indicators:
        cols = {c["name"]: c for c in models[ind["model"]].get("columns") or []}
        if ind["column"] not in cols:
            raise ValueError(f"indicator {ind['id']}: column {ind['column']} is not in the YAML of {ind['model']}")
        writer.writerow([
            ind["id"], ind["name_zh"], ind["name_en"], ind["definition"], ind["formula"], ind["grain"], ind["owner"],
            f"{ind['direction_of_good']} ({DIRECTION_ZH[ind['direction_of_good']]})",
            "official/官方口径" if ind["official"] else "project-defined/本项目定义",
            f"gold.{ind['model']}", ind["column"], cols[ind["column"]].get("data_type"), value_kind(ind),
            ind.get("note") or "", version,
        ])
    return "\ufeff" + buf.getvalue()


# ---- all of it --------------------------------------------------------------------------------
def outputs() -> dict[Path, str]:
    indicators, models = load(), load_models()
    files = {DOCS: render_docs(indicators), DICTIONARY: render_dictionary(indicators, models, registry_version())}
    files.update(render_datasets(indicators, models))
    return files


def stale_generated(expected: dict[Path, str]) -> list[Path]:
    """Generated dataset files that the registry no longer produces (an indicator moved or was dropped)."""
    return [p for p in sorted(DATASETS.glob("*.yaml"))
            if p not in expected and p.read_text(encoding="utf-8").startswith(GENERATED)]


def main(argv: list[str]) -> int:
    files = outputs()
    if "--check" in argv:
        bad = [p for p, text in files.items() if not p.exists() or p.read_bytes().decode("utf-8") != text]
        bad += stale_generated(files)
        for p in bad:
            print(f"{p.relative_to(ROOT)} is out of date: run python dbt/indicators/render.py", file=sys.stderr)
        return 1 if bad else 0
    for p in stale_generated(files):
        p.unlink()
        print(f"removed {p.relative_to(ROOT)}")
    for p, text in files.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8", newline="")
    print(f"wrote {len(files)} files from {len(load())} indicators")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
