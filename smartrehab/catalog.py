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


CROSS_FIELD_RULES = {"not_before": ("column", "than"), "duration": ("start", "end", "value"), "age": ("birth", "at")}
DURATION_UNITS = {"minutes": 60, "days": 86400}


@dataclass(frozen=True)
class CrossFieldRule:
    """One rule of ``row_rules.yaml`` ``cross_field`` (see that file): ``rule`` (not_before | duration | age)
    and its columns and parameters, as written there."""

    table: str
    rule: str
    params: dict

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.params[k] for k in CROSS_FIELD_RULES[self.rule])

    @property
    def column(self) -> str:
        """The column the quarantine rule names (``<rule>:<column>``): the end, the duration or the birth date."""
        return self.params[{"not_before": "column", "duration": "value", "age": "birth"}[self.rule]]

    @property
    def code(self) -> str:
        return f"{self.rule}:{self.column}"


@dataclass(frozen=True)
class RowRules:
    """``catalog/row_rules.yaml``: how many physical lines a CSV record may span, the field limits and the
    cross-field rules per table."""

    max_record_lines: int = 20
    text_types: tuple[str, ...] = ("string", "phone")
    ranges: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    cross_field: dict[str, tuple[CrossFieldRule, ...]] = field(default_factory=dict)

    def range_of(self, table: str, column: str) -> tuple[float, float] | None:
        return self.ranges.get((table, column))

    def rules_of(self, table: str) -> tuple[CrossFieldRule, ...]:
        return self.cross_field.get(table, ())


def _read_row_rules(path: Path) -> RowRules:
    if not path.exists():
        return RowRules()
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    limits = raw.get("field_limits") or {}
    ranges = {}
    for name, (low, high) in (limits.get("ranges") or {}).items():
        table, _, column = name.partition(".")
        ranges[(table, column)] = (float(low), float(high))
    cross = {t: tuple(CrossFieldRule(t, r["rule"], {k: v for k, v in r.items() if k != "rule"}) for r in rules)
             for t, rules in (raw.get("cross_field") or {}).items()}
    return RowRules(max_record_lines=int((raw.get("record") or {}).get("max_lines", 20)),
                    text_types=tuple(limits.get("text_types") or ()), ranges=ranges, cross_field=cross)


@dataclass(frozen=True)
class Catalog:
    tables: dict[str, LegacyTable]
    items: tuple[Item, ...]
    code_tables: dict[str, CodeTable]
    row_rules: RowRules = field(default_factory=RowRules)

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
        out += self._row_rule_problems()
        return out

    def _row_rule_problems(self) -> list[str]:
        out = []
        rr = self.row_rules
        if rr.max_record_lines < 1:
            out.append("row_rules.yaml record.max_lines: must be at least 1")
        for t in rr.text_types:
            if t not in DATA_TYPES:
                out.append(f"row_rules.yaml field_limits.text_types: {t} is not a data type")
        for (table, column), (low, high) in rr.ranges.items():
            where = f"row_rules.yaml field_limits.ranges {table}.{column}"
            if table not in self.tables or column not in self.tables[table].columns:
                out.append(f"{where}: no such legacy column")
            elif self.tables[table].item(column).data_type not in ("integer", "decimal"):
                out.append(f"{where}: not an integer or decimal item")
            if low > high:
                out.append(f"{where}: min {low} above max {high}")
        for table, rules in rr.cross_field.items():
            if table not in self.tables:
                out.append(f"row_rules.yaml cross_field {table}: no such legacy table")
                continue
            types = {i.legacy_column: i.data_type for i in self.tables[table].items}
            for r in rules:
                where = f"row_rules.yaml cross_field {table} {r.rule}"
                if r.rule not in CROSS_FIELD_RULES:
                    out.append(f"{where}: rule not in {sorted(CROSS_FIELD_RULES)}")
                    continue
                missing = [k for k in CROSS_FIELD_RULES[r.rule] if k not in r.params]
                if missing:
                    out.append(f"{where}: missing {missing}")
                    continue
                for c in r.columns:
                    if c not in types:
                        out.append(f"{where}: no column {c}")
                timed = [c for c in r.columns if c in types and types[c] in ("date", "datetime")]
                numeric = [c for c in r.columns if c in types and types[c] in ("integer", "decimal")]
                if r.rule == "duration":
                    if len(timed) != 2 or len(numeric) != 1 or r.params.get("unit") not in DURATION_UNITS:
                        out.append(f"{where}: needs a date/datetime start and end, a numeric value and a unit "
                                   f"in {sorted(DURATION_UNITS)}")
                elif len(timed) != 2:
                    out.append(f"{where}: both columns must be dates or datetimes")
                if r.rule == "age" and not (0 <= float(r.params.get("min", 0)) <= float(r.params.get("max", 150))):
                    out.append(f"{where}: min and max must satisfy 0 <= min <= max")
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
    return Catalog(tables=tables, items=tuple(items), code_tables=code_tables,
                   row_rules=_read_row_rules(root / "row_rules.yaml"))
