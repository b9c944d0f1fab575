"""Live-feed event contracts: load them, check raw messages against them, describe them for Spark.

The contracts are YAML files in ``contracts/`` of the repository: ``envelope.yaml`` (fields common to
every event) and one ``<feed>.yaml`` per feed holding all its versions. A raw message either passes
:func:`check_event` and comes back parsed, or is given exactly one quarantine reason from
:data:`REASON_CODES` (``schema_violation`` carries the offending field: ``schema_violation:payload.heart_rate``).

Checks run in this order, the first failure wins:

1. ``oversize``: the raw message is larger than 1 MiB (checked before parsing);
2. ``invalid_json``: not UTF-8, not JSON, or JSON with NaN / Infinity / overflowing numbers;
3. ``not_an_object``: valid JSON but not an object;
4. ``missing_event_id``: no ``event_id``, or null / empty;
5. ``unknown_feed``: ``feed`` missing or not a contract;
6. ``unknown_contract_version``: ``contract_version`` missing or not a version of that feed's contract;
7. ``schema_violation:<field>``: the event breaks its (feed, version) schema; ``<field>`` is the dotted path
   of the first violation in contract order (``event_id``, ``location.centre``, ``payload.spo2_pct``).
   Impossible dates count, and an int field must be a JSON integer literal (``72``, not ``72.0``);
8. ``future_timestamp``: ``event_time`` is more than 5 minutes after the time the message was received.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

# ---- fixed vocabulary ---------------------------------------------------------------------------

#: Every quarantine reason, in the order the checks run. ``schema_violation`` is reported with the
#: offending field appended: ``schema_violation:<dotted.field.path>``.
REASON_CODES: tuple[str, ...] = (
    "oversize",
    "invalid_json",
    "not_an_object",
    "missing_event_id",
    "unknown_feed",
    "unknown_contract_version",
    "schema_violation",
    "future_timestamp",
)

#: Largest accepted raw message, in bytes (1 MiB).
MAX_MESSAGE_BYTES = 1024 * 1024
#: How far ``event_time`` may lie after the receipt time before the event counts as from the future.
FUTURE_TOLERANCE = timedelta(minutes=5)
#: China Standard Time, the only offset the contracts allow.
CST = timezone(timedelta(hours=8), "CST")

FIELD_TYPES = ("string", "int", "long", "double", "boolean", "timestamp", "date", "struct")
PERSON_RULES = ("required", "optional", "none")
ENVELOPE_FIELDS = ("event_id", "feed", "contract_version", "device_id", "location", "person_pk", "event_time", "payload")

TIMESTAMP_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?\+08:00$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_VERSION_RE = re.compile(r"^[0-9]+\.[0-9]+$")

# Spark simpleString type names (what StructType.fromDDL / simpleString use).
_SPARK_TYPES = {
    "string": "string", "int": "int", "long": "bigint", "double": "double",
    "boolean": "boolean", "timestamp": "timestamp", "date": "date",
}
_INT_BOUNDS = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


class ContractError(ValueError):
    """A contract file is malformed or inconsistent."""


def reason_kind(reason: str) -> str:
    """The reason code without its detail: ``schema_violation:payload.x`` -> ``schema_violation``."""
    return reason.split(":", 1)[0]


# ---- contract model -----------------------------------------------------------------------------


@dataclass(frozen=True)
class UpgradeRule:
    """How a field of a newer version is filled when reading an event of the previous version."""

    field: str
    value_map: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class FieldSpec:
    """One typed field of the envelope or of a payload."""

    name: str
    type: str
    nullable: bool = False
    required: bool = True
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[Any, ...] | None = None
    pattern: str | None = None
    max_length: int | None = None
    format: str | None = None
    code_table: str | None = None
    exclude_codes: tuple[str, ...] = ()
    description: str = ""
    upgrade_from: UpgradeRule | None = None
    fields: tuple[FieldSpec, ...] = ()

    @property
    def spark_type(self) -> str:
        """Spark simpleString type name (structs are flattened by the callers)."""
        return _SPARK_TYPES[self.type]


@dataclass(frozen=True)
class ContractVersion:
    """One version of one feed's contract, with its compiled JSON Schema."""

    feed: str
    version: str
    status: str
    since: str
    changes: str
    payload: tuple[FieldSpec, ...]
    example: dict | None
    schema: dict = field(repr=False)
    validator: Draft202012Validator = field(repr=False, compare=False)
    checker: Callable[[Any], str | None] = field(repr=False, compare=False)

    @property
    def key(self) -> tuple[int, int]:
        """Sort key (major, minor)."""
        major, minor = self.version.split(".")
        return int(major), int(minor)


@dataclass(frozen=True)
class FeedContract:
    """A feed and all its contract versions."""

    feed: str
    name_zh: str
    name_en: str
    person: str
    latest: str
    versions: dict[str, ContractVersion]
    subsystem: str = ""
    device: str = ""
    cadence: str = ""

    def ordered_versions(self) -> list[ContractVersion]:
        """Versions oldest first."""
        return sorted(self.versions.values(), key=lambda v: v.key)


# ---- parsing the YAML ---------------------------------------------------------------------------


def _read_codes(code_tables_dir: Path, name: str) -> list[str]:
    path = code_tables_dir / f"{name}.csv"
    if not path.exists():
        raise ContractError(f"code table '{name}' not found at {path}")
    with path.open(encoding="utf-8", newline="") as fh:
        return [row["code"].strip() for row in csv.DictReader(fh)]


def _parse_field(name: str, raw: Any, where: str) -> FieldSpec:
    if not isinstance(raw, dict):
        raise ContractError(f"{where}: field '{name}' must be a mapping")
    unknown = set(raw) - {
        "type", "nullable", "required", "unit", "min", "max", "enum", "pattern", "max_length", "format",
        "code_table", "exclude_codes", "description", "upgrade_from", "fields",
    }
    if unknown:
        raise ContractError(f"{where}: field '{name}' has unknown keys {sorted(unknown)}")
    ftype = raw.get("type")
    if ftype not in FIELD_TYPES:
        raise ContractError(f"{where}: field '{name}' has type {ftype!r}, not one of {FIELD_TYPES}")
    enum = raw.get("enum")
    if enum is not None:
        if not isinstance(enum, list) or not enum:
            raise ContractError(f"{where}: field '{name}' enum must be a non-empty list")
        if ftype == "string" and not all(isinstance(v, str) for v in enum):
            # YAML 1.1 turns bare yes/no/on/off into booleans: quote them.
            raise ContractError(f"{where}: field '{name}' enum values must all be strings (quote them)")
        enum = tuple(enum)
    lo, hi = raw.get("min"), raw.get("max")
    if lo is not None and hi is not None and lo > hi:
        raise ContractError(f"{where}: field '{name}' has min > max")
    if (lo is not None or hi is not None) and ftype not in ("int", "long", "double"):
        raise ContractError(f"{where}: field '{name}': min/max only apply to numbers")
    upgrade = raw.get("upgrade_from")
    if upgrade is not None:
        if not isinstance(upgrade, dict) or "field" not in upgrade:
            raise ContractError(f"{where}: field '{name}' upgrade_from needs a 'field'")
        upgrade = UpgradeRule(field=str(upgrade["field"]), value_map=upgrade.get("value_map"))
    subfields: tuple[FieldSpec, ...] = ()
    if ftype == "struct":
        subfields = tuple(_parse_field(k, v, f"{where}.{name}") for k, v in (raw.get("fields") or {}).items())
    return FieldSpec(
        name=name, type=ftype, nullable=bool(raw.get("nullable", False)), required=bool(raw.get("required", True)),
        unit=raw.get("unit"), minimum=lo, maximum=hi, enum=enum, pattern=raw.get("pattern"),
        max_length=raw.get("max_length"), format=raw.get("format"), code_table=raw.get("code_table"),
        exclude_codes=tuple(str(c) for c in raw.get("exclude_codes") or ()),
        description=str(raw.get("description", "")).strip(), upgrade_from=upgrade, fields=subfields,
    )


def _field_schema(spec: FieldSpec, code_tables_dir: Path) -> dict:
    """JSON Schema of one field."""
    if spec.type == "struct":
        return _object_schema(spec.fields, code_tables_dir)
    out: dict[str, Any]
    if spec.type == "string":
        out = {"type": "string"}
        if spec.format == "uuid":
            out["pattern"] = UUID_PATTERN
        elif spec.format is not None:
            raise ContractError(f"field '{spec.name}': unknown format {spec.format!r}")
        if spec.pattern:
            out["pattern"] = spec.pattern
        if spec.max_length is not None:
            out["maxLength"] = spec.max_length
    elif spec.type in ("int", "long"):
        lo, hi = _INT_BOUNDS[spec.type]
        out = {"type": "integer", "minimum": max(lo, spec.minimum) if spec.minimum is not None else lo,
               "maximum": min(hi, spec.maximum) if spec.maximum is not None else hi}
    elif spec.type == "double":
        out = {"type": "number"}
        if spec.minimum is not None:
            out["minimum"] = spec.minimum
        if spec.maximum is not None:
            out["maximum"] = spec.maximum
    elif spec.type == "boolean":
        out = {"type": "boolean"}
    elif spec.type == "timestamp":
        out = {"type": "string", "pattern": TIMESTAMP_PATTERN}
    else:  # date
        out = {"type": "string", "pattern": DATE_PATTERN}
    allowed: list[Any] | None = list(spec.enum) if spec.enum is not None else None
    if spec.code_table:
        codes = [c for c in _read_codes(code_tables_dir, spec.code_table) if c not in spec.exclude_codes]
        allowed = [c for c in allowed if c in codes] if allowed is not None else codes
    if allowed is not None:
        out["enum"] = allowed + ([None] if spec.nullable else [])
    if spec.nullable:
        out["type"] = [out["type"], "null"]
    return out


def _object_schema(fields: tuple[FieldSpec, ...], code_tables_dir: Path) -> dict:
    # Keyword order matters: jsonschema reports errors in this order, and the first one names the field.
    return {
        "type": "object",
        "required": [f.name for f in fields if f.required],
        "properties": {f.name: _field_schema(f, code_tables_dir) for f in fields},
        "additionalProperties": False,
    }


def _event_schema(envelope: tuple[FieldSpec, ...], feed: str, version: str, person: str,
                  payload: tuple[FieldSpec, ...], code_tables_dir: Path) -> dict:
    props: dict[str, Any] = {}
    for f in envelope:
        if f.name == "feed":
            props["feed"] = {"const": feed}
        elif f.name == "contract_version":
            props["contract_version"] = {"const": version}
        elif f.name == "payload":
            props["payload"] = _object_schema(payload, code_tables_dir)
        elif f.name == "person_pk":
            base = _field_schema(f, code_tables_dir)
            if person == "none":
                props["person_pk"] = {"type": "null"}
            elif person == "optional":
                props["person_pk"] = {**base, "type": [base["type"], "null"]}
            else:
                props["person_pk"] = base
        else:
            props[f.name] = _field_schema(f, code_tables_dir)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{feed} {version}",
        "type": "object",
        "required": list(ENVELOPE_FIELDS),
        "properties": props,
        "additionalProperties": False,
    }


# ---- the compiled checker ---------------------------------------------------------------------------
#
# jsonschema's validator costs ~0.5 ms an event, too slow for ~780k vitals a day, so each (feed, version) also
# gets a checker compiled straight from the field specs. It follows the JSON Schema's keyword order (type,
# required, properties in contract order, additional properties) so it names the same field; the tests check
# that both agree. Two deliberate differences, both stricter: an int field must be a JSON integer literal (72, not
# 72.0), since Spark's JSON reader would not read 72.0 into an integer column; and a pattern's final ``$`` does
# not accept a trailing newline (Python's ``re`` would).

Check = Callable[[Any], "str | None"]  # value -> None when it passes, else the dotted path of the first violation


def _matcher(pattern: str) -> Callable[[str], bool]:
    """JSON Schema pattern semantics (search), except that a final ``$`` does not match before a newline."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    rx = re.compile(pattern)
    return lambda v: rx.search(v) is not None


def _value_check(spec: FieldSpec, code_tables_dir: Path, path: str) -> Check:
    """Checker of one scalar field, equivalent to its JSON Schema (see above)."""
    nullable, kind = spec.nullable, spec.type
    allowed: set[Any] | None = set(spec.enum) if spec.enum is not None else None
    if spec.code_table:
        codes = {c for c in _read_codes(code_tables_dir, spec.code_table) if c not in spec.exclude_codes}
        allowed = allowed & codes if allowed is not None else codes
    pattern = spec.pattern or (UUID_PATTERN if spec.format == "uuid" else None)
    match = _matcher(pattern) if pattern else None
    max_len = spec.max_length
    if kind in ("int", "long"):
        lo, hi = _INT_BOUNDS[kind]
        lo = max(lo, spec.minimum) if spec.minimum is not None else lo
        hi = min(hi, spec.maximum) if spec.maximum is not None else hi
    else:
        lo, hi = spec.minimum, spec.maximum

    def ok(v: Any) -> bool:
        if v is None:
            return nullable
        t = type(v)
        if kind == "string":
            if t is not str or (match is not None and not match(v)) or (max_len is not None and len(v) > max_len):
                return False
        elif kind in ("int", "long"):
            if t is not int or not lo <= v <= hi:
                return False
        elif kind == "double":
            if (t is not float and t is not int) or (lo is not None and v < lo) or (hi is not None and v > hi):
                return False
        elif kind == "boolean":
            return t is bool
        elif kind == "timestamp":
            if t is not str or not _TS_MATCH(v):
                return False
            try:
                datetime.fromisoformat(v)
            except ValueError:
                return False
        elif kind == "date":
            if t is not str or not _DATE_MATCH(v):
                return False
            try:
                date.fromisoformat(v)
            except ValueError:
                return False
        return allowed is None or v in allowed

    return lambda v: None if ok(v) else path


def _object_check(members: list[tuple[str, bool, Check]], path: str) -> Check:
    """Checker of an object: ``members`` are (name, required, checker) in contract order."""
    known = {name for name, _, _ in members}
    required = [name for name, req, _ in members if req]
    here = path or "$"
    prefix = f"{path}." if path else ""

    def check(obj: Any) -> str | None:
        if type(obj) is not dict:
            return here
        for name in required:
            if name not in obj:
                return prefix + name
        for name, _, fn in members:
            if name in obj:
                bad = fn(obj[name])
                if bad is not None:
                    return bad
        if len(obj) > len(known):
            for name in obj:
                if name not in known:
                    return prefix + str(name)
        return None

    return check


def _field_check(spec: FieldSpec, code_tables_dir: Path, path: str) -> Check:
    if spec.type != "struct":
        return _value_check(spec, code_tables_dir, path)
    inner = _object_check([(f.name, f.required, _field_check(f, code_tables_dir, f"{path}.{f.name}"))
                           for f in spec.fields], path)
    if spec.nullable:
        return lambda v: None if v is None else inner(v)
    return inner


def _null_only(path: str) -> Check:
    def check(v: Any) -> str | None:
        return None if v is None else path

    return check


def _event_check(envelope: tuple[FieldSpec, ...], feed: str, version: str, person: str,
                 payload: tuple[FieldSpec, ...], code_tables_dir: Path) -> Check:
    members: list[tuple[str, bool, Check]] = []
    for f in envelope:
        if f.name in ("feed", "contract_version"):
            expected = feed if f.name == "feed" else version
            fn: Check = _field_check(replace(f, enum=(expected,)), code_tables_dir, f.name)
        elif f.name == "payload":
            fn = _object_check([(p.name, p.required, _field_check(p, code_tables_dir, f"payload.{p.name}"))
                                for p in payload], "payload")
        elif f.name == "person_pk" and person == "none":
            fn = _null_only("person_pk")
        elif f.name == "person_pk":
            fn = _field_check(replace(f, nullable=person == "optional"), code_tables_dir, "person_pk")
        else:
            fn = _field_check(f, code_tables_dir, f.name)
        members.append((f.name, True, fn))
    return _object_check(members, "")


_TS_MATCH = _matcher(TIMESTAMP_PATTERN)
_DATE_MATCH = _matcher(DATE_PATTERN)


def _flatten(fields: tuple[FieldSpec, ...], prefix: str = "") -> dict[str, FieldSpec]:
    out: dict[str, FieldSpec] = {}
    for f in fields:
        if f.type == "struct":
            out.update(_flatten(f.fields, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = f
    return out


# ---- the registry -------------------------------------------------------------------------------


def _fail(reason: str) -> tuple[None, str]:
    return None, reason


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:20]} overflows a double")
    return value


def _schema_error_field(error: Any) -> str:
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [k for k in error.validator_value if k not in error.instance]
        if missing:
            path.append(str(missing[0]))
    elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {})
        extra = [k for k in error.instance if k not in known]
        if extra:
            path.append(str(extra[0]))
    return ".".join(path) or "$"


class ContractRegistry:
    """All feed contracts, with one compiled validator per (feed, version)."""

    def __init__(self, envelope: tuple[FieldSpec, ...], feeds: dict[str, FeedContract]):
        self.envelope = envelope
        self.feeds = feeds

    # -- look-ups --------------------------------------------------------------------------------
    def feed_names(self) -> list[str]:
        """Feed names, alphabetical."""
        return sorted(self.feeds)

    def contract(self, feed: str) -> FeedContract:
        """The contract of ``feed`` (KeyError when unknown)."""
        try:
            return self.feeds[feed]
        except KeyError:
            raise KeyError(f"no contract for feed '{feed}'") from None

    def version(self, feed: str, version: str | None = None) -> ContractVersion:
        """One version of a feed's contract (the latest when ``version`` is None)."""
        contract = self.contract(feed)
        version = version or contract.latest
        try:
            return contract.versions[version]
        except KeyError:
            raise KeyError(f"feed '{feed}' has no contract version {version}") from None

    # -- checking --------------------------------------------------------------------------------
    def check(self, raw: bytes | str, received_at: datetime) -> tuple[dict | None, str | None]:
        """Parse and check one raw message: ``(event, None)`` when it passes, ``(None, reason)`` when not."""
        if isinstance(raw, str):
            if len(raw) > MAX_MESSAGE_BYTES or (
                    4 * len(raw) > MAX_MESSAGE_BYTES and len(raw.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES):
                return _fail("oversize")
            text = raw
        else:
            if len(raw) > MAX_MESSAGE_BYTES:
                return _fail("oversize")
            try:
                text = bytes(raw).decode("utf-8")
            except UnicodeDecodeError:
                return _fail("invalid_json")
        try:
            event = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
        except (ValueError, RecursionError):
            return _fail("invalid_json")
        if not isinstance(event, dict):
            return _fail("not_an_object")
        if event.get("event_id") in (None, ""):
            return _fail("missing_event_id")
        feed = event.get("feed")
        if not isinstance(feed, str) or feed not in self.feeds:
            return _fail("unknown_feed")
        version = event.get("contract_version")
        contract = self.feeds[feed]
        if not isinstance(version, str) or version not in contract.versions:
            return _fail("unknown_contract_version")
        bad = contract.versions[version].checker(event)
        if bad is not None:
            return _fail(f"schema_violation:{bad}")
        if received_at.tzinfo is None:
            received_at = received_at.replace(tzinfo=CST)
        if datetime.fromisoformat(event["event_time"]) > received_at + FUTURE_TOLERANCE:
            return _fail("future_timestamp")
        return event, None

    def schema_violation(self, event: Mapping[str, Any]) -> str | None:
        """The first schema violation of an event of a known (feed, version) as jsonschema reports it.

        The reference implementation of the compiled checker that :meth:`check` uses (and ~30x slower).
        """
        ver = self.version(event["feed"], event["contract_version"])
        error = next(ver.validator.iter_errors(event), None)
        if error is not None:
            return _schema_error_field(error)
        # JSON Schema patterns cannot tell 2026-02-30 from a real date.
        fields = {**_flatten(tuple(f for f in self.envelope if f.name != "payload")),
                  **{f"payload.{p.name}": p for p in ver.payload}}
        for dotted, spec in fields.items():
            value: Any = event
            for part in dotted.split("."):
                value = value.get(part)
            if value is not None and spec.type in ("timestamp", "date"):
                try:
                    (datetime.fromisoformat if spec.type == "timestamp" else date.fromisoformat)(value)
                except ValueError:
                    return dotted
        return None

    # -- describing for Spark --------------------------------------------------------------------
    def _payload_fields(self, feed: str, version: str | None) -> list[FieldSpec]:
        contract = self.contract(feed)
        if version is not None:
            return list(self.version(feed, version).payload)
        # Union of all versions: the latest version's fields first, then fields only older versions have.
        out = list(contract.versions[contract.latest].payload)
        seen = {f.name for f in out}
        for ver in reversed(contract.ordered_versions()):
            for f in ver.payload:
                if f.name not in seen:
                    out.append(f)
                    seen.add(f.name)
        return out

    def spark_fields(self, feed: str, version: str | None = None) -> dict[str, str]:
        """Flattened field name -> Spark type name, e.g. ``{"location.centre": "string", "payload.spo2_pct": "int"}``.

        With ``version=None`` the payload is the union over all versions of the feed (a stream carries
        every version; fields a version lacks read as null). Type names are Spark simpleStrings:
        string, int, bigint, double, boolean, timestamp, date.
        """
        out: dict[str, str] = {}
        for f in self.envelope:
            if f.name == "payload":
                for p in self._payload_fields(feed, version):
                    out[f"payload.{p.name}"] = p.spark_type
            elif f.type == "struct":
                for name, spec in _flatten(f.fields, f"{f.name}.").items():
                    out[name] = spec.spark_type
            else:
                out[f.name] = f.spark_type
        return out

    def spark_ddl(self, feed: str, version: str | None = None) -> str:
        """The nested event schema as a Spark DDL string (for ``from_json`` or ``StructType.fromDDL``)."""

        def ddl_type(spec: FieldSpec, children: list[FieldSpec] | None = None) -> str:
            if spec.type == "struct":
                members = children if children is not None else list(spec.fields)
                return "STRUCT<" + ", ".join(f"`{c.name}`: {ddl_type(c)}" for c in members) + ">"
            return spec.spark_type.upper()

        parts = []
        for f in self.envelope:
            children = self._payload_fields(feed, version) if f.name == "payload" else None
            parts.append(f"`{f.name}` {ddl_type(f, children)}")
        return ", ".join(parts)

    # -- version handling ------------------------------------------------------------------------
    def upgrade(self, event: Mapping[str, Any]) -> dict:
        """A checked event with its payload rewritten to the feed's latest contract version.

        Steps through every version in between, applying each newer field's ``upgrade_from`` rule (rename
        and/or value map). Fields with no source become null; values missing from a value map become null.
        ``contract_version`` keeps the version the producer wrote (lineage); the payload shape is the latest.
        """
        contract = self.contract(event["feed"])
        versions = contract.ordered_versions()
        current = self.version(contract.feed, event["contract_version"])
        payload = dict(event["payload"])
        for ver in versions:
            if ver.key <= current.key:
                continue
            had = payload
            payload = {}
            for f in ver.payload:
                if f.name in had:
                    payload[f.name] = had[f.name]
                elif f.upgrade_from is not None and f.upgrade_from.field in had:
                    value = had[f.upgrade_from.field]
                    if f.upgrade_from.value_map is not None:
                        value = f.upgrade_from.value_map.get(value)
                    payload[f.name] = value
                else:
                    payload[f.name] = None
        out = dict(event)
        out["payload"] = payload
        return out


# ---- loading ------------------------------------------------------------------------------------


def _default_dirs() -> tuple[Path, Path]:
    from smartrehab.settings import get_settings

    s = get_settings()
    return s.repo_root / "contracts", s.catalog_dir / "code_tables"


def _load_feed(path: Path, envelope: tuple[FieldSpec, ...], code_tables_dir: Path) -> FeedContract:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    where = path.name
    if not isinstance(doc, dict):
        raise ContractError(f"{where}: not a mapping")
    feed = doc.get("feed")
    if feed != path.stem:
        raise ContractError(f"{where}: feed '{feed}' must equal the file name '{path.stem}'")
    person = doc.get("person_pk")
    if person not in PERSON_RULES:
        raise ContractError(f"{where}: person_pk must be one of {PERSON_RULES}, not {person!r}")
    raw_versions = doc.get("versions")
    if not isinstance(raw_versions, dict) or not raw_versions:
        raise ContractError(f"{where}: no versions")
    versions: dict[str, ContractVersion] = {}
    field_types: dict[str, str] = {}
    for version, body in raw_versions.items():
        if not isinstance(version, str) or not _VERSION_RE.match(version):
            raise ContractError(f"{where}: version key {version!r} must be a quoted \"MAJOR.MINOR\" string")
        vwhere = f"{where} {version}"
        payload = tuple(_parse_field(k, v, vwhere) for k, v in (body.get("payload") or {}).items())
        if not payload:
            raise ContractError(f"{vwhere}: empty payload")
        for f in payload:
            if field_types.setdefault(f.name, f.type) != f.type:
                raise ContractError(f"{vwhere}: field '{f.name}' changes type across versions; add a new field instead")
        example = body.get("example")
        if example is not None and (example.get("feed") != feed or example.get("contract_version") != version):
            raise ContractError(f"{vwhere}: example must carry feed '{feed}' and contract_version '{version}'")
        schema = _event_schema(envelope, feed, version, person, payload, code_tables_dir)
        Draft202012Validator.check_schema(schema)
        versions[version] = ContractVersion(
            feed=feed, version=version, status=str(body.get("status", "current")), since=str(body.get("since", "")),
            changes=str(body.get("changes", "")).strip(), payload=payload, example=example, schema=schema,
            validator=Draft202012Validator(schema),
            checker=_event_check(envelope, feed, version, person, payload, code_tables_dir),
        )
    latest = doc.get("latest")
    if latest not in versions:
        raise ContractError(f"{where}: latest {latest!r} is not one of its versions")
    if max(versions.values(), key=lambda v: v.key).version != latest:
        raise ContractError(f"{where}: latest {latest!r} is not the highest version")
    ordered = sorted(versions.values(), key=lambda v: v.key)
    for i, ver in enumerate(ordered):
        older = {f.name for v in ordered[:i] for f in v.payload}
        for f in ver.payload:
            if f.upgrade_from is not None and f.upgrade_from.field not in older:
                raise ContractError(f"{where} {ver.version}: '{f.name}' upgrades from unknown field "
                                    f"'{f.upgrade_from.field}'")
    return FeedContract(
        feed=feed, name_zh=str(doc.get("name_zh", "")), name_en=str(doc.get("name_en", "")), person=person,
        latest=latest, versions=versions, subsystem=str(doc.get("subsystem", "")),
        device=str(doc.get("device", "")), cadence=str(doc.get("cadence", "")).strip(),
    )


@functools.lru_cache(maxsize=8)
def load_contracts(contracts_dir: Path | str | None = None, code_tables_dir: Path | str | None = None) -> ContractRegistry:
    """Load and compile every contract (default: ``contracts/`` and ``catalog/code_tables/`` of the repository)."""
    if contracts_dir is None or code_tables_dir is None:
        default_contracts, default_codes = _default_dirs()
        contracts_dir = default_contracts if contracts_dir is None else contracts_dir
        code_tables_dir = default_codes if code_tables_dir is None else code_tables_dir
    cdir, tdir = Path(contracts_dir), Path(code_tables_dir)
    env_doc = yaml.safe_load((cdir / "envelope.yaml").read_text(encoding="utf-8"))
    envelope = tuple(_parse_field(k, v, "envelope.yaml") for k, v in env_doc["fields"].items())
    if tuple(f.name for f in envelope) != ENVELOPE_FIELDS:
        raise ContractError(f"envelope.yaml: fields must be exactly {ENVELOPE_FIELDS} in that order")
    feeds = {}
    for path in sorted(cdir.glob("*.yaml")):
        if path.name == "envelope.yaml":
            continue
        contract = _load_feed(path, envelope, tdir)
        feeds[contract.feed] = contract
    if not feeds:
        raise ContractError(f"no feed contracts in {cdir}")
    return ContractRegistry(envelope, feeds)


# ---- module-level conveniences on the repository's contracts -----------------------------------


def check_event(raw: bytes | str, received_at: datetime) -> tuple[dict | None, str | None]:
    """Check one raw message against the repository's contracts: ``(event, None)`` or ``(None, reason)``.

    ``received_at`` is when the platform received the message; a naive value is taken as +08:00.
    """
    return load_contracts().check(raw, received_at)


def feed_names() -> list[str]:
    """Every feed with a contract, alphabetical."""
    return load_contracts().feed_names()


def spark_fields(feed: str, version: str | None = None) -> dict[str, str]:
    """Flattened ``field -> Spark type`` of a feed (all versions' union when ``version`` is None)."""
    return load_contracts().spark_fields(feed, version)


def spark_ddl(feed: str, version: str | None = None) -> str:
    """Nested Spark DDL of a feed's events (all versions' union when ``version`` is None)."""
    return load_contracts().spark_ddl(feed, version)


def upgrade_event(event: Mapping[str, Any]) -> dict:
    """A checked event with its payload in the feed's latest contract version."""
    return load_contracts().upgrade(event)
