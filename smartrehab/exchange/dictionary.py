"""Generate the exchange field dictionary and code lists from the spec, the catalog and the indicator registry.

    python -m smartrehab.exchange.dictionary           # rewrite docs/exchange/fields.md and codes.csv
    python -m smartrehab.exchange.dictionary --check   # exit 1 when either is out of date

``fields.md`` says, for every column of every package, what it is (Chinese and English name, definition),
its type and code table with the standard behind it, its PII class and who may receive it, and which
gold / silver column and catalog item or indicator it carries. ``codes.csv`` lists every code the
packages may hold; the verifier checks code columns against it. Both are committed, and
tests/unit/exchange checks that they are up to date.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import yaml

from smartrehab.exchange.spec import CODES_FILE, KPI_CODE_TABLE, SPEC_DIR, Spec, check_against_sources, load_spec

FIELDS_FILE = SPEC_DIR / "fields.md"
TYPE_TEXT = {
    "string": "text", "code": "code", "integer": "integer", "decimal": "decimal", "date": "date YYYY-MM-DD",
    "month": "month YYYY-MM", "datetime": "date-time YYYY-MM-DD HH:MM:SS (+08:00)", "boolean": "1 / 0",
    "pseudonym": "64 hex (HMAC-SHA256)", "id_number": "GB 11643 ID number",
}
PII_TEXT = {"direct": "direct identifier 直接标识", "quasi": "quasi-identifier 准标识",
            "sensitive_health": "sensitive (health) 敏感健康信息", "pseudonym": "exchange pseudonym 交换假名",
            "none": "none"}


def load_indicators(settings=None) -> list[dict]:
    from smartrehab.settings import get_settings

    settings = settings or get_settings()
    path = settings.dbt_dir / "indicators" / "indicators.yml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))["indicators"]


def _cell(text) -> str:
    return " ".join(str(text or "").split()).replace("|", "\\|")


def code_rows(spec: Spec, catalog, indicators: list[dict]) -> list[list[str]]:
    """code_table, code, label_zh, label_en, standard for every code table a package column uses."""
    by_id = {i["id"]: i for i in indicators}
    used = sorted({c.code_table for p in spec.packages.values() for f in p.files.values() for c in f.columns
                   if c.type == "code"})
    rows = []
    for name in used:
        if name == KPI_CODE_TABLE:
            ids = sorted({i for p in spec.packages.values() for i in p.indicator_ids})
            rows += [[name, i, by_id[i]["name_zh"], by_id[i]["name_en"], "dbt/indicators/indicators.yml"] for i in ids]
        elif name in spec.local_code_tables:
            t = spec.local_code_tables[name]
            rows += [[name, str(c["code"]), c["label_zh"], c["label_en"], t.get("standard", "")]
                     for c in sorted(t["codes"], key=lambda c: str(c["code"]))]
        else:
            t = catalog.code_tables[name]
            rows += [[name, code, zh, en, t.standard] for code, (zh, en) in sorted(t.labels.items())]
    return rows


def render_codes(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["code_table", "code", "label_zh", "label_en", "standard"])
    w.writerows(rows)
    return buf.getvalue()


def _describe(col, catalog_items: dict, indicators: dict) -> tuple[str, str, str, str]:
    """(name_zh, name_en, definition, origin) of a column."""
    item = catalog_items.get(tuple(col.catalog.split(".", 1))) if col.catalog else None
    ind = indicators.get(col.indicator) if col.indicator else None
    name_zh = col.name_zh or (ind["name_zh"] if ind else "") or (item.name_zh if item else "")
    name_en = col.name_en or (ind["name_en"] if ind else "") or (item.name_en if item else "")
    definition = ind["definition"] + f" Formula: `{ind['formula']}`." if ind else ""
    origin = []
    if item:
        origin.append(f"catalog {item.item_code} {item.legacy_table}.{item.legacy_column}")
    if ind:
        origin.append(f"indicator `{ind['id']}` ({'official' if ind['official'] else 'project-defined'})")
    return name_zh, name_en, definition, "; ".join(origin)


def render_fields(spec: Spec, catalog, indicators: list[dict]) -> str:
    by_id = {i["id"]: i for i in indicators}
    items = {(i.silver_table, i.silver_column): i for i in catalog.items}
    standards = {n: t.standard for n, t in catalog.code_tables.items()}
    standards.update({n: t.get("standard", "") for n, t in spec.local_code_tables.items()})
    standards[KPI_CODE_TABLE] = "indicator registry (dbt/indicators/indicators.yml)"
    out = [
        "<!-- Generated from docs/exchange/packages.yaml, catalog/ and dbt/indicators/indicators.yml by "
        "`python -m smartrehab.exchange.dictionary`: do not edit. -->",
        "",
        f"# 交换数据字典 / Exchange field dictionary (spec {spec.spec_version})",
        "",
        "One table per file of each package. *Receivers* lists who gets a column: a direct identifier goes only "
        "to the receivers authorised for it (README.md §5); every other column goes to every receiver of the "
        "package. Codes of every code table are in `codes.csv`.",
        "",
        "## 接收方 / Receivers",
        "",
        "| receiver | 名称 | packages | encoding | signature | authorised direct identifiers |",
        "|---|---|---|---|---|---|",
    ]
    for r in spec.receivers.values():
        out.append(f"| `{r.id}` | {_cell(r.name_zh)} | {', '.join(r.packages)} | {r.encoding} | {r.signature} | "
                   f"{', '.join(sorted(r.authorised_fields)) or 'none'} |")
    for pkg in spec.packages.values():
        receivers = [r for r in spec.receivers.values() if pkg.name in r.packages]
        out += ["", f"## `{pkg.name}` {pkg.name_zh} / {pkg.name_en}", "",
                f"Schema version {pkg.schema_version}; period: {pkg.period}; final {pkg.closes_after_days} day(s) "
                f"after the period ends; receivers: {', '.join(r.id for r in receivers)}."]
        for f in pkg.files.values():
            out += ["", f"### `{f.path}` {f.name_zh}", "",
                    f"Grain: {f.grain}. Source: {f.source}. Key (and row order): {', '.join(f.key)}."
                    + (f" Period column: {f.period_column}." if f.period_column else "")
                    + (" Must have rows." if f.required else " May be empty."), "",
                    "| # | column | 中文名 | English name | type | empty | code table (standard) | PII | receivers "
                    "| source | from | since |",
                    "|---|---|---|---|---|---|---|---|---|---|---|---|"]
            for n, c in enumerate(f.columns, 1):
                zh, en, definition, origin = _describe(c, items, by_id)
                typ = TYPE_TEXT[c.type] + (f", {c.scale} decimals" if c.type == "decimal" else "")
                code = f"{c.code_table} ({standards.get(c.code_table, '')})" if c.type == "code" else ""
                who = [r.id for r in receivers if r.authorised(f, c)]
                en_cell = en + (f". {definition}" if definition else "")
                derive = f" (pseudonym of input `{c.derive_from}`)" if c.derive_from else ""
                out.append(f"| {n} | `{c.name}` | {_cell(zh)} | {_cell(en_cell)} | {typ}{derive} | "
                           f"{'yes' if c.nullable else 'no'} | {_cell(code)} | {PII_TEXT[c.pii]} | "
                           f"{', '.join(who) or 'nobody'} | {_cell(c.source)} | {_cell(origin)} | "
                           f"{c.since[0]}.{c.since[1]} |")
        if pkg.indicators:
            out += ["", f"### Indicators of `{pkg.name}` (code table `{KPI_CODE_TABLE}`)", "",
                    "| group | indicator_id | 中文名 | English name | definition | formula | grain | owner | basis "
                    "| gold source |", "|---|---|---|---|---|---|---|---|---|---|"]
            for group, ids in pkg.indicators.items():
                for i in ids:
                    ind = by_id[i]
                    out.append(f"| {group} | `{i}` | {_cell(ind['name_zh'])} | {_cell(ind['name_en'])} | "
                               f"{_cell(ind['definition'])} | `{_cell(ind['formula'])}` | {_cell(ind['grain'])} | "
                               f"{_cell(ind['owner'])} | {'official' if ind['official'] else 'project-defined'} | "
                               f"gold.{ind['model']}.{ind['column']} |")
    return "\n".join(out) + "\n"


def outputs(settings=None, spec: Spec | None = None) -> dict[Path, str]:
    from smartrehab.catalog import load_catalog
    from smartrehab.settings import get_settings

    settings = settings or get_settings()
    spec = spec or load_spec()
    catalog = load_catalog(settings.catalog_dir)
    indicators = load_indicators(settings)
    problems = check_against_sources(spec, catalog, indicators)
    if problems:
        raise ValueError("docs/exchange/packages.yaml disagrees with its sources:\n  " + "\n  ".join(problems))
    return {FIELDS_FILE: render_fields(spec, catalog, indicators),
            CODES_FILE: render_codes(code_rows(spec, catalog, indicators))}


def stale(files: dict[Path, str]) -> list[Path]:
    return [p for p, text in files.items() if not p.exists() or p.read_bytes().decode("utf-8") != text]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    files = outputs()
    if "--check" in argv:
        bad = stale(files)
        for p in bad:
            print(f"{p} is out of date: run python -m smartrehab.exchange.dictionary", file=sys.stderr)
        return 1 if bad else 0
    for p, text in files.items():
        p.write_text(text, encoding="utf-8", newline="")
    print(f"wrote {', '.join(str(p) for p in files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
