"""Where every legacy item goes: its bronze column, its silver column, the dbt models that use it.

Built from the catalog and dbt's manifest (``dbt/target/manifest.json``): a staging model uses an
item when it reads the item's silver table and names its silver column; every model downstream of
that staging model (by ``ref``) depends on the item too. ``smartrehab coverage`` writes the
report to ``docs/legacy_coverage.csv``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from smartrehab.catalog import Catalog

COLUMNS = ["item_code", "name_zh", "name_en", "legacy_system", "legacy_table", "legacy_column", "pii_class",
           "bronze_column", "silver_column", "staging_models", "downstream_models", "reported_to_ministry"]


def _children(manifest: dict) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for uid, node in manifest["nodes"].items():
        if node.get("resource_type") != "model":
            continue
        for parent in node.get("depends_on", {}).get("nodes", []):
            out.setdefault(parent, set()).add(uid)
    return out


def _downstream(uid: str, children: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), [uid]
    while todo:
        for c in children.get(todo.pop(), ()):
            if c not in seen:
                seen.add(c)
                todo.append(c)
    return seen


def bronze_column(legacy_table: str, legacy_column: str) -> str:
    """Where a legacy column's raw values sit in the one legacy bronze table, as a SQL expression."""
    return f"bronze.legacy_rows._raw['{legacy_column}'] (_legacy_table = '{legacy_table}')"


def coverage_rows(catalog: Catalog, manifest: dict) -> list[dict[str, str]]:
    children = _children(manifest)
    # silver table -> staging models reading it, with their SQL
    readers: dict[str, list[tuple[str, str]]] = {}
    for uid, node in manifest["nodes"].items():
        if node.get("resource_type") != "model":
            continue
        for src in node.get("depends_on", {}).get("nodes", []):
            if src.startswith("source.") and src.split(".")[-2] == "silver":
                readers.setdefault(src.split(".")[-1], []).append((uid, node.get("raw_code", "")))
    rows = []
    for it in catalog.items:
        name = lambda uid: uid.split(".")[-1]  # noqa: E731
        staging = [uid for uid, sql in readers.get(it.silver_table, [])
                   if re.search(rf"\b{re.escape(it.silver_column)}\b", sql)]
        down = sorted({name(d) for s in staging for d in _downstream(s, children)})
        rows.append({
            "item_code": it.item_code, "name_zh": it.name_zh, "name_en": it.name_en,
            "legacy_system": it.legacy_system, "legacy_table": it.legacy_table, "legacy_column": it.legacy_column,
            "pii_class": it.pii_class, "bronze_column": bronze_column(it.legacy_table, it.legacy_column),
            "silver_column": f"silver.{it.silver_table}.{it.silver_column}",
            "staging_models": ";".join(sorted(name(s) for s in staging)), "downstream_models": ";".join(down),
            "reported_to_ministry": "Y" if it.reported_to_ministry else "N",
        })
    return rows


def render_csv(rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def write_report(catalog: Catalog, manifest_path: Path, out: Path) -> list[dict[str, str]]:
    rows = coverage_rows(catalog, json.loads(manifest_path.read_text(encoding="utf-8")))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_csv(rows), encoding="utf-8")
    return rows
