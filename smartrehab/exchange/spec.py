"""The exchange specification as data: ``docs/exchange/packages.yaml`` and ``docs/exchange/codes.csv``.

This module is shared by the builder and by the receivers' verifier, so it needs nothing but the two
spec files (no settings, no catalog): a receiving team runs it with the files they were given.
``check_against_sources`` is the sender-side check that the spec agrees with the catalog and the
indicator registry it was written from.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import yaml

SPEC_DIR = Path(__file__).resolve().parent.parent.parent / "docs" / "exchange"
SPEC_FILE = SPEC_DIR / "packages.yaml"
CODES_FILE = SPEC_DIR / "codes.csv"

TYPES = {"string", "code", "integer", "decimal", "date", "month", "datetime", "boolean", "pseudonym", "id_number"}
PII = {"direct", "quasi", "sensitive_health", "pseudonym", "none"}
ENCODINGS = {"UTF-8": "utf-8", "GB18030": "gb18030"}
SIGNATURES = {"sm2", "ed25519"}
PERIODS = {"day", "month"}
KPI_CODE_TABLE = "kpi_indicator"
BEIJING = timezone(timedelta(hours=8))


class SpecError(ValueError):
    """The specification file itself is malformed (which file, which entry, what is wrong)."""


def _version(text: str, where: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)\.(\d+)", str(text))
    if not m:
        raise SpecError(f"{where}: version '{text}' is not MAJOR.MINOR")
    return int(m.group(1)), int(m.group(2))


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    pii: str
    nullable: bool = False
    code_table: str = ""
    scale: int = 0
    derive_from: str = ""          # input column whose exchange pseudonym this column carries
    since: tuple[int, int] = (1, 0)
    catalog: str = ""
    indicator: str = ""
    name_zh: str = ""
    name_en: str = ""
    source: str = ""

    @property
    def input_name(self) -> str:
        """The column the builder expects in its input table."""
        return self.derive_from or self.name


@dataclass(frozen=True)
class FileSpec:
    package: str
    id: str
    path: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    period_column: str = ""
    required: bool = True
    since: tuple[int, int] = (1, 0)
    name_zh: str = ""
    grain: str = ""
    source: str = ""

    def field_id(self, column: str) -> str:
        return f"{self.package}.{self.id}.{column}"

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.package}/{self.path} has no column {name}")


@dataclass(frozen=True)
class Package:
    name: str
    schema_version: str
    period: str
    closes_after_days: int
    files: dict[str, FileSpec]
    indicators: dict[str, tuple[str, ...]] = field(default_factory=dict)
    name_zh: str = ""
    name_en: str = ""

    @property
    def version(self) -> tuple[int, int]:
        return _version(self.schema_version, self.name)

    @property
    def indicator_ids(self) -> list[str]:
        return [i for group in self.indicators.values() for i in group]


@dataclass(frozen=True)
class Receiver:
    id: str
    name_zh: str
    name_en: str
    packages: tuple[str, ...]
    encoding: str
    signature: str
    authorised_fields: frozenset[str]
    signer_id: str
    basis: str = ""

    @property
    def codec(self) -> str:
        return ENCODINGS[self.encoding]

    def authorised(self, file: FileSpec, column: Column) -> bool:
        return column.pii != "direct" or file.field_id(column.name) in self.authorised_fields


@dataclass(frozen=True)
class Spec:
    spec_version: str
    sender: dict
    defaults: dict
    packages: dict[str, Package]
    receivers: dict[str, Receiver]
    local_code_tables: dict[str, dict]
    codes: dict[str, frozenset[str]]   # code table -> codes (from codes.csv), empty when not loaded
    path: Path

    def package(self, name: str) -> Package:
        if name not in self.packages:
            raise SpecError(f"package '{name}' is not in {self.path}; known: {', '.join(sorted(self.packages))}")
        return self.packages[name]

    def receiver(self, rid: str) -> Receiver:
        if rid not in self.receivers:
            raise SpecError(f"receiver '{rid}' is not in {self.path}; known: {', '.join(sorted(self.receivers))}")
        return self.receivers[rid]

    def columns_for(self, file: FileSpec, receiver: Receiver, version: tuple[int, int] | None = None) -> list[Column]:
        """The columns of ``file`` as written for ``receiver`` (unauthorised direct identifiers left out)
        at schema ``version`` (the package's current one by default)."""
        version = version or self.packages[file.package].version
        return [c for c in file.columns if c.since <= version and receiver.authorised(file, c)]


def _column(raw: dict, where: str) -> Column:
    unknown = set(raw) - {"name", "type", "pii", "nullable", "code_table", "scale", "derive", "since", "catalog",
                          "indicator", "name_zh", "name_en", "source"}
    if unknown:
        raise SpecError(f"{where}: unknown keys {sorted(unknown)}")
    for k in ("name", "type", "pii"):
        if k not in raw:
            raise SpecError(f"{where}: '{k}' is required")
    name = str(raw["name"])
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise SpecError(f"{where}: column name '{name}' is not snake_case ASCII")
    if raw["type"] not in TYPES:
        raise SpecError(f"{where}: type '{raw['type']}' not in {sorted(TYPES)}")
    if raw["pii"] not in PII:
        raise SpecError(f"{where}: pii '{raw['pii']}' not in {sorted(PII)}")
    if raw["type"] == "code" and not raw.get("code_table"):
        raise SpecError(f"{where}: a code column needs a code_table")
    if raw["type"] == "decimal" and "scale" not in raw:
        raise SpecError(f"{where}: a decimal column needs a scale")
    derive = raw.get("derive") or {}
    if derive and (raw["type"] != "pseudonym" or set(derive) != {"pseudonym_of"}):
        raise SpecError(f"{where}: derive must be {{pseudonym_of: <input column>}} on a pseudonym column")
    return Column(name=name, type=raw["type"], pii=raw["pii"], nullable=bool(raw.get("nullable", False)),
                  code_table=raw.get("code_table", ""), scale=int(raw.get("scale", 0)),
                  derive_from=derive.get("pseudonym_of", ""), since=_version(raw.get("since", "1.0"), where),
                  catalog=raw.get("catalog", ""), indicator=raw.get("indicator", ""),
                  name_zh=raw.get("name_zh", ""), name_en=raw.get("name_en", ""), source=str(raw.get("source", "")))


def _file(package: str, fid: str, raw: dict, where: str) -> FileSpec:
    cols = tuple(_column(c, f"{where} column {n + 1}") for n, c in enumerate(raw.get("columns") or []))
    if not cols:
        raise SpecError(f"{where}: no columns")
    names = [c.name for c in cols]
    if len(set(names)) != len(names):
        raise SpecError(f"{where}: duplicate column names")
    path = str(raw.get("path", ""))
    if not re.fullmatch(r"data/[a-z0-9_]+\.csv", path):
        raise SpecError(f"{where}: path '{path}' must be data/<name>.csv")
    key = tuple(raw.get("key") or ())
    if not key or any(k not in names for k in key):
        raise SpecError(f"{where}: key {list(key)} must name columns of the file")
    pcol = raw.get("period_column", "")
    if pcol and pcol not in names:
        raise SpecError(f"{where}: period_column {pcol} is not a column")
    return FileSpec(package=package, id=fid, path=path, key=key, columns=cols, period_column=pcol,
                    required=bool(raw.get("required", True)), since=_version(raw.get("since", "1.0"), where),
                    name_zh=raw.get("name_zh", ""), grain=raw.get("grain", ""), source=str(raw.get("source", "")))


def load_codes(path: Path) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["code_table"], set()).add(row["code"])
    return {k: frozenset(v) for k, v in out.items()}


def load_spec(path: Path | str | None = None, codes: Path | str | None = None) -> Spec:
    """Read the spec; ``codes`` defaults to codes.csv beside it (skipped when absent, e.g. while generating it)."""
    path = Path(path or SPEC_FILE)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"cannot read the exchange spec {path}: {exc}") from exc
    defaults = raw.get("defaults") or {}
    packages = {}
    for name, p in (raw.get("packages") or {}).items():
        where = f"{path.name} packages.{name}"
        if p.get("period") not in PERIODS:
            raise SpecError(f"{where}: period must be one of {sorted(PERIODS)}")
        _version(p.get("schema_version", ""), where)
        files = {fid: _file(name, fid, f, f"{where}.files.{fid}") for fid, f in (p.get("files") or {}).items()}
        paths = [f.path for f in files.values()]
        if len(set(paths)) != len(paths):
            raise SpecError(f"{where}: two files share a path")
        packages[name] = Package(
            name=name, schema_version=str(p["schema_version"]), period=p["period"],
            closes_after_days=int(p.get("closes_after_days", 0)), files=files,
            indicators={k: tuple(v) for k, v in (p.get("indicators") or {}).items()},
            name_zh=p.get("name_zh", ""), name_en=p.get("name_en", ""))
    receivers = {}
    for rid, r in (raw.get("receivers") or {}).items():
        where = f"{path.name} receivers.{rid}"
        if r.get("encoding") not in ENCODINGS:
            raise SpecError(f"{where}: encoding must be one of {sorted(ENCODINGS)}")
        sig = r.get("signature", defaults.get("signature", "sm2"))
        if sig not in SIGNATURES:
            raise SpecError(f"{where}: signature must be one of {sorted(SIGNATURES)}")
        for pkg in r.get("packages") or []:
            if pkg not in packages:
                raise SpecError(f"{where}: package {pkg} is not defined")
        fields_ = frozenset(r.get("authorised_fields") or [])
        for fid in fields_:
            pkg, _, rest = fid.partition(".")
            file_id, _, col = rest.partition(".")
            try:
                column = packages[pkg].files[file_id].column(col)
            except KeyError:
                raise SpecError(f"{where}: authorised field {fid} does not exist") from None
            if column.pii != "direct":
                raise SpecError(f"{where}: authorised field {fid} is not a direct identifier (pii {column.pii})")
        receivers[rid] = Receiver(
            id=rid, name_zh=r.get("name_zh", ""), name_en=r.get("name_en", ""),
            packages=tuple(r.get("packages") or ()), encoding=r["encoding"], signature=sig,
            authorised_fields=fields_, signer_id=str(r.get("signer_id", defaults.get("signer_id", "1234567812345678"))),
            basis=r.get("basis", ""))
    codes_path = Path(codes) if codes else path.parent / "codes.csv"
    codes_map = load_codes(codes_path) if codes_path.exists() else {}
    return Spec(spec_version=str(raw.get("spec_version", "")), sender=raw.get("sender") or {}, defaults=defaults,
                packages=packages, receivers=receivers, local_code_tables=raw.get("code_tables") or {},
                codes=codes_map, path=path)


# ---- periods --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    kind: str
    first: date
    last: date

    @property
    def label(self) -> str:
        return self.first.isoformat() if self.kind == "day" else self.first.strftime("%Y-%m")

    def contains(self, d: date) -> bool:
        return self.first <= d <= self.last


def parse_period(kind: str, text: str) -> Period:
    text = str(text)
    if kind == "day":
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(f"period '{text}': a daily package needs a day, YYYY-MM-DD")
        d = date.fromisoformat(text)
        return Period(kind, d, d)
    if not re.fullmatch(r"\d{4}-\d{2}", text):
        raise ValueError(f"period '{text}': a monthly package needs a month, YYYY-MM")
    first = date(int(text[:4]), int(text[5:7]), 1)
    nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return Period(kind, first, nxt - timedelta(days=1))


def closes_on(package: Package, period: Period) -> date:
    """The first as-of day for which the period counts as closed (final)."""
    return period.last + timedelta(days=package.closes_after_days)


def default_generated_at(package: Package, period: Period) -> datetime:
    """The moment a final package of ``period`` is due: the start of the day after it closes, Beijing time."""
    d = closes_on(package, period) + timedelta(days=1)
    return datetime(d.year, d.month, d.day, tzinfo=BEIJING)


# ---- sender-side consistency with the catalog and the indicator registry -------------------------------
CATALOG_TYPES = {"string": {"string"}, "integer": {"integer"}, "decimal": {"decimal"}, "date": {"date"},
                 "datetime": {"datetime"}, "code": {"code"}, "id_number": {"id_number"}, "phone": {"string"}}


def check_against_sources(spec: Spec, catalog, indicators: list[dict]) -> list[str]:
    """Every disagreement between the spec and the catalog / indicator registry, one message each."""
    out = []
    by_silver = {(i.silver_table, i.silver_column): i for i in catalog.items}
    by_id = {i["id"]: i for i in indicators}
    for pkg in spec.packages.values():
        for ind in pkg.indicator_ids:
            if ind not in by_id:
                out.append(f"packages.{pkg.name}.indicators: {ind} is not in the indicator registry")
        for f in pkg.files.values():
            for c in f.columns:
                where = f"packages.{pkg.name}.files.{f.id}.{c.name}"
                if c.catalog:
                    item = by_silver.get(tuple(c.catalog.split(".", 1)))
                    if item is None:
                        out.append(f"{where}: catalog {c.catalog} is not a silver column of catalog/items.csv")
                        continue
                    if item.pii_class != c.pii:
                        out.append(f"{where}: pii {c.pii} differs from the catalog's {item.pii_class} ({item.item_code})")
                    if c.type not in CATALOG_TYPES.get(item.data_type, set()):
                        out.append(f"{where}: type {c.type} does not fit the catalog's {item.data_type}")
                    if item.data_type == "code" and c.code_table != item.code_table:
                        out.append(f"{where}: code_table {c.code_table} differs from the catalog's {item.code_table}")
                if c.indicator and c.indicator not in by_id:
                    out.append(f"{where}: indicator {c.indicator} is not in the registry")
                if not (c.catalog or c.indicator or (c.name_zh and c.name_en)):
                    out.append(f"{where}: needs catalog, indicator, or both name_zh and name_en")
                if c.type == "code":
                    known = (c.code_table in catalog.code_tables or c.code_table in spec.local_code_tables
                             or (c.code_table == KPI_CODE_TABLE and pkg.indicators))
                    if not known:
                        out.append(f"{where}: code table {c.code_table} is neither in the catalog nor in the spec")
    return out
