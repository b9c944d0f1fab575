"""The legacy data catalog: what every legacy item is, read from the data files in ``catalog/``.

Ingestion, the generator, the quality gates and the coverage report all read this; adding a
legacy item is a change to ``catalog/items.csv`` (and, for a new table, ``catalog/tables.yaml``),
not to code.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass, field
from pathlib import Path

import yaml

DATA_TYPES = {"string", "integer", "decimal", "date", "datetime", "code", "id_number", "phone"}
PII_CLASSES = {"direct", "quasi", "sensitive_health", "none"}
FILE_FORMATS = {"csv", "fixed_width"}


@dataclass(frozen=True)
class Item:
    item_code: str
    name_zh: str
    name_en: str
    legacy_system: str
    legacy_table: str
    legacy_column: str
    data_type: str
    length: int
    format: str
    code_table: str
    pii_class: str
    silver_table: str
    silver_column: str
    reported_to_ministry: bool

    @property
    def is_direct_identifier(self) -> bool:
        return self.pii_class == "direct"


@dataclass(frozen=True)
class LegacyTable:
    name: str
    system: str
    name_zh: str
    name_en: str
    encoding: str
    file_format: str
    delimiter: str
    key: tuple[str, ...]
    version_column: str
    silver_table: str
    grain: str
    owner: str
    references: dict[str, str]
    generate: dict = field(default_factory=dict)  # the synthetic generator's rows-per-entity spec
    items: tuple[Item, ...] = field(default=())

    @property
    def columns(self) -> list[str]:
        return [i.legacy_column for i in self.items]

    def item(self, column: str) -> Item:
        for i in self.items:
            if i.legacy_column == column:
                return i
        raise KeyError(f"{self.name} has no column {column}")

    @property
    def widths(self) -> list[int]:
        """Field widths of a fixed-width export: the catalog length of each column."""
        return [i.length for i in self.items]


@dataclass(frozen=True)
class CodeTable:
    name: str
    standard: str
    labels: dict[str, tuple[str, str]]  # code -> (label_zh, label_en)


@dataclass(frozen=True)
class Catalog:
    tables: dict[str, LegacyTable]
    items: tuple[Item, ...]
    code_tables: dict[str, CodeTable]

    def table(self, name: str) -> LegacyTable:
        try:
            return self.tables[name]
        except KeyError:
            raise KeyError(f"legacy table {name} is not in catalog/tables.yaml") from None

    def problems(self) -> list[str]:
        """Every inconsistency in the catalog, one message each (empty when sound)."""
        out = []
        seen_codes: set[str] = set()
        seen_cols: set[tuple[str, str]] = set()
        seen_targets: set[tuple[str, str]] = set()
        for it in self.items:
            where = f"items.csv {it.item_code}"
            if it.item_code in seen_codes:
                out.append(f"{where}: duplicate item code")
            seen_codes.add(it.item_code)
            if (it.legacy_table, it.legacy_column) in seen_cols:
                out.append(f"{where}: {it.legacy_table}.{it.legacy_column} listed twice")
            seen_cols.add((it.legacy_table, it.legacy_column))
            if it.data_type not in DATA_TYPES:
                out.append(f"{where}: data_type '{it.data_type}' not in {sorted(DATA_TYPES)}")
            if it.pii_class not in PII_CLASSES:
                out.append(f"{where}: pii_class '{it.pii_class}' not in {sorted(PII_CLASSES)}")
            if it.legacy_table not in self.tables:
                out.append(f"{where}: legacy table {it.legacy_table} not in tables.yaml")
            elif self.tables[it.legacy_table].silver_table != it.silver_table:
                out.append(f"{where}: silver_table {it.silver_table} differs from its table's "
                           f"{self.tables[it.legacy_table].silver_table}")
            if not it.silver_table or not it.silver_column:
                out.append(f"{where}: no silver target")
            if (it.silver_table, it.silver_column) in seen_targets:
                out.append(f"{where}: silver column {it.silver_table}.{it.silver_column} targeted twice")
            seen_targets.add((it.silver_table, it.silver_column))
            if it.data_type == "code" and it.code_table not in self.code_tables:
                out.append(f"{where}: code table '{it.code_table}' has no file in code_tables/")
            if it.data_type != "code" and it.code_table:
                out.append(f"{where}: code_table set on a {it.data_type} item")
            if it.length <= 0:
                out.append(f"{where}: length must be positive")
        for t in self.tables.values():
            where = f"tables.yaml {t.name}"
            if not t.items:
                out.append(f"{where}: no items")
            cols = set(t.columns)
            for k in t.key:
                if k not in cols:
                    out.append(f"{where}: key column {k} is not an item")
            if t.version_column and t.version_column not in cols:
                out.append(f"{where}: version column {t.version_column} is not an item")
            if t.file_format not in FILE_FORMATS:
                out.append(f"{where}: file format {t.file_format} not in {sorted(FILE_FORMATS)}")
            for col, target in t.references.items():
                ref_table, _, ref_col = target.partition(".")
                if col not in cols:
                    out.append(f"{where}: reference from unknown column {col}")
                if ref_table not in self.tables or ref_col not in self.tables[ref_table].columns:
                    out.append(f"{where}: reference target {target} does not exist")
        return out


def _read_items(path: Path) -> list[Item]:
    out = []
    with path.open(encoding="utf-8", newline="") as fh:
        for n, row in enumerate(csv.DictReader(fh), 2):
            try:
                out.append(Item(
                    item_code=row["item_code"].strip(), name_zh=row["name_zh"].strip(),
                    name_en=row["name_en"].strip(), legacy_system=row["legacy_system"].strip(),
                    legacy_table=row["legacy_table"].strip(), legacy_column=row["legacy_column"].strip(),
                    data_type=row["data_type"].strip(), length=int(row["length"] or 0),
                    format=row["format"].strip(), code_table=row["code_table"].strip(),
                    pii_class=row["pii_class"].strip(), silver_table=row["silver_table"].strip(),
                    silver_column=row["silver_column"].strip(),
                    reported_to_ministry=row["reported_to_ministry"].strip().upper() == "Y",
                ))
            except (KeyError, ValueError, AttributeError) as exc:
                raise ValueError(f"{path}:{n}: malformed item row ({exc})") from exc
    return out


@functools.lru_cache(maxsize=4)
def load_catalog(root: Path | str | None = None) -> Catalog:
    if root is None:
        from smartrehab.settings import get_settings

        root = get_settings().catalog_dir
    root = Path(root)
    items = _read_items(root / "items.csv")
    raw_tables = yaml.safe_load((root / "tables.yaml").read_text(encoding="utf-8"))
    tables = {}
    for name, t in raw_tables.items():
        f = t.get("file", {})
        tables[name] = LegacyTable(
            name=name, system=t["system"], name_zh=t.get("name_zh", ""), name_en=t.get("name_en", ""),
            encoding=f.get("encoding", "gb18030"), file_format=f.get("format", "csv"),
            delimiter=f.get("delimiter", ","), key=tuple(t["key"]), version_column=t.get("version_column", ""),
            silver_table=t["silver_table"], grain=t.get("grain", ""), owner=t.get("owner", ""),
            references=dict(t.get("references") or {}),
            generate=dict(t.get("generate") or {}),
            items=tuple(i for i in items if i.legacy_table == name),
        )
    index = yaml.safe_load((root / "code_tables.yaml").read_text(encoding="utf-8"))
    code_tables = {}
    for name, meta in index.items():
        path = root / "code_tables" / f"{name}.csv"
        if not path.exists():
            continue  # reported by problems() for items that use it
        with path.open(encoding="utf-8", newline="") as fh:
            labels = {r["code"]: (r["label_zh"], r["label_en"]) for r in csv.DictReader(fh)}
        code_tables[name] = CodeTable(name, meta.get("standard", ""), labels)
    return Catalog(tables=tables, items=tuple(items), code_tables=code_tables)
