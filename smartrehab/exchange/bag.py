"""Build an exchange package: one BagIt bag (RFC 8493) per package, period and receiver, signed.

    build_package(settings, "population_daily", "2026-11-19", "moj", {"population": t1, "movements": t2},
                  out_dir, as_of=date(2026, 11, 20)) -> Path of the bag

Tables are pyarrow Tables, pandas DataFrames or lists of dicts, keyed by the file ids of
docs/exchange/packages.yaml. The layout, the formats and every rule applied here are those of
docs/exchange/README.md; smartrehab/exchange/verify.py checks a bag against the same spec.
Deterministic: the same tables, period, receiver, keys and generation time give byte-identical files.
"""

from __future__ import annotations

import hmac
import math
import os
import re
import secrets
import shutil
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from numbers import Integral
from pathlib import Path

from smartrehab import citizen_id
from smartrehab.exchange import crypto
from smartrehab.exchange.spec import (
    BEIJING,
    Column,
    FileSpec,
    Package,
    Period,
    Receiver,
    Spec,
    closes_on,
    default_generated_at,
    load_spec,
    parse_period,
)

BAGIT_TXT = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
ALGORITHMS = ("sha256", "sm3")
PSEUDONYM_SECRET = "exchange_pseudonym_key"
SIGNATURE_NAMES = {"sm2": "SM2-with-SM3", "ed25519": "Ed25519"}
SIGNED_MANIFEST = {"sm2": "tagmanifest-sm3.txt", "ed25519": "tagmanifest-sha256.txt"}
MAX_PROBLEMS = 20
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MONTH = re.compile(r"\d{4}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class ExchangeError(Exception):
    """A package was not built: the message says which package, file, row and rule, and what to do."""


class BuildRefused(ExchangeError):
    pass


def bag_name(package: str, period: str, receiver: str) -> str:
    return f"{package}_{period}_{receiver}"


def signed_manifest(algorithm: str) -> str:
    return SIGNED_MANIFEST[algorithm]


def exchange_pseudonym(key_hex: str, receiver: str, domain: str, value: str) -> str:
    """HMAC-SHA256 of ``receiver|domain|value``: stable for one receiver, unlinkable between receivers."""
    msg = f"{receiver}|{domain}|{value.strip()}".encode()
    return hmac.new(bytes.fromhex(key_hex), msg, "sha256").hexdigest()


# ---- input tables -----------------------------------------------------------------------------------
def _rows(table) -> tuple[list[str] | None, list[dict]]:
    """(column names, rows as dicts) of a pyarrow Table, a pandas DataFrame or a list of dicts (an empty list
    has no column names: None)."""
    if hasattr(table, "to_pylist") and hasattr(table, "column_names"):  # pyarrow
        return list(table.column_names), table.to_pylist()
    if hasattr(table, "to_dict") and hasattr(table, "columns"):  # pandas
        return [str(c) for c in table.columns], table.to_dict("records")
    rows = list(table)
    if not rows:
        return None, []
    names: list[str] = []
    for r in rows:
        for k in r:
            if k not in names:
                names.append(k)
    return names, rows


def _scalar(v):
    if type(v).__module__ == "numpy" and hasattr(v, "item"):
        return v.item()
    if type(v).__name__ in ("NaTType", "NAType"):
        return None
    return v


class _Problems:
    def __init__(self, where: str):
        self.where = where
        self.items: list[str] = []
        self.count = 0

    def add(self, msg: str) -> None:
        self.count += 1
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(msg)

    def raise_if_any(self, advice: str) -> None:
        if self.count:
            more = f"\n  ... and {self.count - len(self.items)} more" if self.count > len(self.items) else ""
            raise BuildRefused(f"{self.where}: {self.count} problem(s):\n  " + "\n  ".join(self.items) + more
                               + f"\n{advice}")


def format_value(col: Column, v, codes: dict[str, frozenset[str]]) -> str:
    """The CSV text of one value (README.md §4); ValueError says what is wrong with it."""
    v = _scalar(v)
    if v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and v == ""):
        if not col.nullable:
            raise ValueError("empty, but the column is not nullable")
        return ""
    t = col.type
    if t == "string":
        if not isinstance(v, str):
            raise ValueError(f"{v!r} is not a string")
        return v
    if t == "code":
        if not isinstance(v, str):
            raise ValueError(f"{v!r} is not a code string (codes are text: '01', not 1)")
        table = codes.get(col.code_table)
        if table is None:
            raise ValueError(f"code table {col.code_table} is not in codes.csv (regenerate the dictionary)")
        if v not in table:
            raise ValueError(f"'{v}' is not a code of {col.code_table}")
        return v
    if t == "integer":
        if isinstance(v, bool):
            raise ValueError(f"{v!r} is a boolean, not an integer")
        if isinstance(v, float | Decimal) and v == int(v):
            v = int(v)
        if not isinstance(v, Integral):
            raise ValueError(f"{v!r} is not an integer")
        return str(int(v))
    if t == "decimal":
        if isinstance(v, bool) or not isinstance(v, Integral | float | Decimal):
            raise ValueError(f"{v!r} is not a number")
        try:
            d = Decimal(str(v)).quantize(Decimal(1).scaleb(-col.scale), rounding=ROUND_HALF_UP)
        except InvalidOperation:
            raise ValueError(f"{v!r} is not a finite number") from None
        if not d.is_finite():
            raise ValueError(f"{v!r} is not a finite number")
        if d == 0:
            d = abs(d)  # no "-0.0"
        return format(d, "f")
    if t == "date":
        if isinstance(v, datetime):
            if v.time() != datetime.min.time():
                raise ValueError(f"{v!r} has a time of day; a date was expected")
            v = v.date()
        if isinstance(v, date):
            return v.isoformat()
        if isinstance(v, str) and _DATE.fullmatch(v):
            date.fromisoformat(v)
            return v
        raise ValueError(f"{v!r} is not a date (YYYY-MM-DD)")
    if t == "month":
        if isinstance(v, date):
            if v.day != 1 or (isinstance(v, datetime) and v.time() != datetime.min.time()):
                raise ValueError(f"{v!r} is not the first day of a month")
            return v.strftime("%Y-%m")
        if isinstance(v, str) and _MONTH.fullmatch(v) and 1 <= int(v[5:]) <= 12:
            return v
        raise ValueError(f"{v!r} is not a month (YYYY-MM)")
    if t == "datetime":
        if isinstance(v, datetime):
            if v.tzinfo is not None:
                v = v.astimezone(BEIJING).replace(tzinfo=None)
            if v.microsecond:
                raise ValueError(f"{v!r} has fractions of a second")
            return v.strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(v, str) and _DATETIME.fullmatch(v):
            datetime.strptime(v, "%Y-%m-%d %H:%M:%S")
            return v
        raise ValueError(f"{v!r} is not a date-time (YYYY-MM-DD HH:MM:SS, Beijing time)")
    if t == "boolean":
        if isinstance(v, bool) or (isinstance(v, Integral) and v in (0, 1)):
            return "1" if v else "0"
        raise ValueError(f"{v!r} is not a boolean")
    if t == "pseudonym":
        if not (isinstance(v, str) and _HEX64.fullmatch(v)):
            raise ValueError(f"{v!r} is not a pseudonym (64 lower-case hex digits)")
        return v
    if t == "id_number":
        checked = citizen_id.check(v) if isinstance(v, str) else None
        if checked is None or not checked.ok:
            rule = checked.failure if checked else "not a string"
            raise ValueError(f"not a valid citizen ID number (GB 11643: {rule})")
        return checked.value
    raise ValueError(f"unknown type {t}")


def period_date(col: Column, text: str) -> date:
    if col.type == "month":
        return date(int(text[:4]), int(text[5:7]), 1)
    return date.fromisoformat(text[:10])


def _in_period(col: Column, text: str, period: Period) -> bool:
    if col.type == "month":
        return text == period.first.strftime("%Y-%m") if period.kind == "month" else False
    return period.contains(period_date(col, text))


@dataclass
class _File:
    spec: FileSpec
    columns: list[Column]
    rows: list[list[str]]


def _prepare_file(spec: Spec, pkg: Package, fspec: FileSpec, receiver: Receiver, period: Period, table,
                  pseudonym_key: str | None) -> _File:
    where = f"{pkg.name} {period.label} for {receiver.id}: file {fspec.path}"
    names, rows = _rows(table)
    columns = spec.columns_for(fspec, receiver)
    expected = {c.input_name: c for c in columns}
    all_inputs = {c.input_name: c for c in fspec.columns}
    problems = _Problems(where)
    if names is None:
        names = [c.input_name for c in columns]
    for n in names:
        if n in expected:
            continue
        col = all_inputs.get(n)
        if col is not None and col.pii == "direct":
            raise BuildRefused(
                f"{where}: receiver '{receiver.id}' ({receiver.name_zh}) is not authorised for the direct identifier "
                f"{fspec.field_id(col.name)} ({col.name_en or col.name}, PII class direct in the catalog {col.catalog}). "
                f"Drop the column '{n}' from the input table, or, after a data-sharing agreement, add "
                f"'{fspec.field_id(col.name)}' to receivers.{receiver.id}.authorised_fields in {spec.path.name}.")
        problems.add(f"column '{n}' is not in the schema of {fspec.package}/{fspec.id} "
                     f"(columns: {', '.join(expected)})")
    for c in columns:
        if c.input_name not in names:
            problems.add(f"column '{c.input_name}' is missing from the input table")
    problems.raise_if_any(f"The schema is in {spec.path}; a new column needs a new minor schema version there first.")
    out_rows: list[list[str]] = []
    for n, row in enumerate(rows, 1):
        cells = []
        for c in columns:
            v = row.get(c.input_name)
            try:
                if c.derive_from:
                    v = _scalar(v)
                    if v is None or str(v).strip() == "":
                        raise ValueError(f"no value in '{c.derive_from}' to derive the pseudonym from")
                    cells.append(exchange_pseudonym(pseudonym_key or "", receiver.id, c.name, str(v)))
                else:
                    cells.append(format_value(c, v, spec.codes))
            except ValueError as exc:
                problems.add(f"row {n}, column {c.name}: {exc}")
                cells.append("")
        out_rows.append(cells)
    problems.raise_if_any("Fix the rows in the source (gold / silver) or the query that reads it, then build again.")
    idx = {c.name: i for i, c in enumerate(columns)}
    if fspec.period_column:
        pcol = fspec.column(fspec.period_column)
        for n, cells in enumerate(out_rows, 1):
            if not _in_period(pcol, cells[idx[pcol.name]], period):
                problems.add(f"row {n}: {pcol.name} {cells[idx[pcol.name]]} is outside the period {period.label}")
        problems.raise_if_any("Only rows of the period belong in its package: filter the input on the period.")
    key_idx = [idx[k] for k in fspec.key]
    seen: dict[tuple, int] = {}
    for n, cells in enumerate(out_rows, 1):
        k = tuple(cells[i] for i in key_idx)
        if k in seen:
            problems.add(f"rows {seen[k]} and {n} share the key {dict(zip(fspec.key, k, strict=True))}")
        seen.setdefault(k, n)
    problems.raise_if_any(f"The key of {fspec.path} is ({', '.join(fspec.key)}): one row per key.")
    out_rows.sort(key=lambda cells: tuple(cells[i] for i in key_idx))
    return _File(fspec, columns, out_rows)


def csv_text(columns: list[Column], rows: list[list[str]]) -> str:
    """RFC 4180: CRLF line ends, a field quoted only when it holds a comma, a quote, CR or LF."""
    def cell(v: str) -> str:
        return '"' + v.replace('"', '""') + '"' if any(ch in v for ch in ',"\r\n') else v

    lines = [",".join(c.name for c in columns)] + [",".join(cell(v) for v in r) for r in rows]
    return "".join(line + "\r\n" for line in lines)


def manifest_text(entries: dict[str, str]) -> str:
    """``<digest>  <path>`` lines sorted by path (RFC 8493 §2.1.3, with %, CR and LF percent-encoded)."""
    def enc(p: str) -> str:
        return p.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    return "".join(f"{d}  {enc(p)}\n" for p, d in sorted(entries.items()))


def _bag_info(spec: Spec, pkg: Package, period: Period, receiver: Receiver, files: list[tuple[str, int]],
              oxum: str, generated_at: datetime, provisional: bool, as_of: date, algorithm: str,
              key: crypto.SigningKey, signer_id: str) -> str:
    s = spec.sender
    pairs = [
        ("Source-Organization", f"{s.get('organisation_zh', '')} / {s.get('organisation_en', '')}"),
        ("Internal-Sender-Identifier", s.get("sender_id", "")),
        ("External-Identifier", bag_name(pkg.name, period.label, receiver.id)),
        ("External-Description", f"{pkg.name_zh} / {pkg.name_en}"),
        ("Bagging-Date", generated_at.date().isoformat()),
        ("Payload-Oxum", oxum),
        ("Exchange-Spec-Version", spec.spec_version),
        ("Exchange-Package", pkg.name),
        ("Exchange-Schema-Version", pkg.schema_version),
        ("Exchange-Period", period.label),
        ("Exchange-Period-Status", "provisional" if provisional else "final"),
    ]
    if provisional:
        pairs.append(("Data-As-Of", as_of.isoformat()))
    pairs += [
        ("Exchange-Receiver", receiver.id),
        ("Payload-Encoding", receiver.encoding),
        ("Generated-At", generated_at.isoformat(timespec="seconds")),
    ]
    pairs += [("Record-Count", f"{path} {count}") for path, count in sorted(files)]
    pairs += [("Signature-Algorithm", SIGNATURE_NAMES[algorithm])]
    if algorithm == "sm2":
        pairs.append(("Signer-ID", signer_id))
    pairs += [("Signature-File", signed_manifest(algorithm) + ".sig"),
              ("Signing-Key-Fingerprint", key.public.fingerprint)]
    for k, v in pairs:
        if "\n" in str(v) or "\r" in str(v):
            raise BuildRefused(f"bag-info.txt: the value of {k} may not contain a line break")
    return "".join(f"{k}: {v}\n" for k, v in pairs)


def render_bag(spec: Spec, pkg: Package, period: Period, receiver: Receiver, files: list[_File], *,
               generated_at: datetime, provisional: bool, as_of: date, key: crypto.SigningKey,
               signer_id: str) -> dict[str, bytes]:
    """Every file of the bag, path -> bytes (pure: no clock, no disk)."""
    out: dict[str, bytes] = {}
    for f in files:
        try:
            out[f.spec.path] = csv_text(f.columns, f.rows).encode(receiver.codec)
        except UnicodeEncodeError as exc:
            raise BuildRefused(f"{f.spec.path}: a value cannot be written in {receiver.encoding}: {exc}") from None
    payload = sorted(out)
    oxum = f"{sum(len(out[p]) for p in payload)}.{len(payload)}"
    for alg in ALGORITHMS:
        out[f"manifest-{alg}.txt"] = manifest_text({p: crypto.file_digests(out[p])[alg] for p in payload}).encode()
    out["bagit.txt"] = BAGIT_TXT.encode()
    out["bag-info.txt"] = _bag_info(spec, pkg, period, receiver, [(f.spec.path, len(f.rows)) for f in files], oxum,
                                    generated_at, provisional, as_of, key.algorithm, key, signer_id).encode("utf-8")
    tags = ["bagit.txt", "bag-info.txt"] + [f"manifest-{alg}.txt" for alg in ALGORITHMS]
    for alg in ALGORITHMS:
        out[f"tagmanifest-{alg}.txt"] = manifest_text({p: crypto.file_digests(out[p])[alg] for p in tags}).encode()
    signed = signed_manifest(key.algorithm)
    out[signed + ".sig"] = key.sign(out[signed], signer_id)
    return out


def _keep_signature(bag: dict[str, bytes], target: Path, key: crypto.SigningKey, signer_id: str) -> None:
    """A rebuild whose signed tag manifest is unchanged keeps the signature already in place.

    An SM2 signature is randomised (a fresh K each time), so without this a re-run with the same inputs would
    differ in the signature file alone; reusing a signature that verifies makes the re-run byte-identical."""
    signed = signed_manifest(key.algorithm)
    old_manifest, old_sig = target / signed, target / (signed + ".sig")
    if not (old_manifest.is_file() and old_sig.is_file()) or old_manifest.read_bytes() != bag[signed]:
        return
    try:
        if key.public.verify(bag[signed], old_sig.read_bytes(), signer_id):
            bag[signed + ".sig"] = old_sig.read_bytes()
    except crypto.SignatureError:
        pass


def _write_atomically(files: dict[str, bytes], target: Path) -> None:
    """Write into a sibling temporary folder, then swap it into place: a reader sees the old bag or the new one."""
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    for stale in parent.glob(f".{target.name}.tmp-*"):  # left by a build that was killed
        shutil.rmtree(stale, ignore_errors=True)
    tmp = parent / f".{target.name}.tmp-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        for rel, data in sorted(files.items()):
            p = tmp / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            os.chmod(p, 0o644)
        os.chmod(tmp, 0o755)
        if target.exists():
            old = parent / f".{target.name}.tmp-{secrets.token_hex(4)}-old"
            os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def build_package(settings, package: str, period: str, receiver: str, tables: dict, out_dir: Path | str, *,
                  as_of: date | None = None, provisional: bool = False, generated_at: datetime | None = None,
                  signature: str | None = None, signer_id: str | None = None, spec: Spec | None = None,
                  archive: bool = False) -> Path:
    """Build the bag ``out_dir/<package>_<period>_<receiver>`` and return its path (see the module doc).

    ``as_of`` is the last day the input data is complete for (default: yesterday, Beijing time); a
    period not closed by then is refused unless ``provisional``, which marks the bag so. ``signature``
    (sm2 | ed25519) and ``signer_id`` override the receiver's profile. ``archive`` also writes the
    deterministic ``<bag>.zip`` beside the bag. A re-run replaces the bag (and zip) in place.
    """
    spec = spec or load_spec()
    pkg = spec.package(package)
    rcv = spec.receiver(receiver)
    if package not in rcv.packages:
        raise BuildRefused(f"receiver '{receiver}' ({rcv.name_zh}) does not receive package '{package}' "
                           f"(its packages: {', '.join(rcv.packages)}); see receivers.{receiver} in {spec.path.name}")
    per = parse_period(pkg.period, period)
    if as_of is None:
        as_of = (datetime.now(BEIJING) - timedelta(days=1)).date()
    due = closes_on(pkg, per)
    if as_of < due and not provisional:
        raise BuildRefused(
            f"{package} {per.label}: the period is still open (the data is complete up to {as_of}; the period closes "
            f"once data up to {due} is in, {pkg.closes_after_days} day(s) after its end). Wait, or build it with "
            f"provisional=True, which marks bag-info.txt 'Exchange-Period-Status: provisional'.")
    where = f"{package} {per.label} for {receiver}"
    unknown = sorted(set(tables) - set(pkg.files))
    if unknown:
        raise BuildRefused(f"{where}: tables {unknown} are not files of the package (files: {', '.join(pkg.files)})")
    missing = sorted(set(pkg.files) - set(tables))
    if missing:
        raise BuildRefused(f"{where}: no table given for file(s) {missing}; pass an empty table for a file "
                           f"without rows")
    if not spec.codes:
        raise BuildRefused(f"{spec.path.parent / 'codes.csv'} is missing: run python -m smartrehab.exchange.dictionary")
    needs_key = any(c.derive_from for f in pkg.files.values() for c in f.columns)
    pkey = settings.secret(PSEUDONYM_SECRET) if needs_key else None
    files = [_prepare_file(spec, pkg, f, rcv, per, tables[fid], pkey) for fid, f in sorted(pkg.files.items())]
    if not any(f.rows for f in files):
        raise BuildRefused(f"{where}: the period has no data (every file is empty). Check that gold is built for "
                           f"{per.label}; an empty package is never sent.")
    empty_required = [f.spec.path for f in files if f.spec.required and not f.rows]
    if empty_required:
        raise BuildRefused(f"{where}: {', '.join(empty_required)} has no rows, but the spec requires rows for every "
                           f"period (required: true). Check the gold model it is read from.")
    algorithm = signature or rcv.signature
    key = crypto.signing_key(settings, algorithm)
    if generated_at is None:
        generated_at = default_generated_at(pkg, per) if not provisional else \
            datetime(as_of.year, as_of.month, as_of.day, tzinfo=BEIJING) + timedelta(days=1)
    if generated_at.tzinfo is None:
        raise BuildRefused("generated_at must carry a time zone (e.g. +08:00)")
    bag = render_bag(spec, pkg, per, rcv, files, generated_at=generated_at, provisional=provisional, as_of=as_of,
                     key=key, signer_id=signer_id or rcv.signer_id)
    target = Path(out_dir) / bag_name(package, per.label, receiver)
    _keep_signature(bag, target, key, signer_id or rcv.signer_id)
    _write_atomically(bag, target)
    if archive:
        write_zip(target)
    return target


# ---- archive -----------------------------------------------------------------------------------------
def bag_info(bag_dir: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in (Path(bag_dir) / "bag-info.txt").read_text(encoding="utf-8").splitlines():
        if ":" in line:
            k, _, v = line.partition(":")
            out.setdefault(k.strip(), []).append(v.strip())
    return out


def write_zip(bag_dir: Path | str, dest: Path | str | None = None) -> Path:
    """``<bag>.zip`` with the bag under its own folder: sorted entries, every time stamp the bag's
    Generated-At (Beijing time), fixed permissions, deflate level 9. Written to a temporary name, then renamed."""
    bag_dir = Path(bag_dir)
    dest = Path(dest) if dest else bag_dir.with_name(bag_dir.name + ".zip")
    stamp = datetime.fromisoformat(bag_info(bag_dir)["Generated-At"][0]).astimezone(BEIJING)
    date_time = (max(stamp.year, 1980), stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    tmp = dest.with_name(f".{dest.name}.tmp-{secrets.token_hex(4)}")
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            for rel in sorted(q.relative_to(bag_dir).as_posix() for q in bag_dir.rglob("*") if q.is_file()):
                info = zipfile.ZipInfo(f"{bag_dir.name}/{rel}", date_time=date_time)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3
                info.external_attr = 0o100644 << 16
                zf.writestr(info, (bag_dir / rel).read_bytes(), compresslevel=9)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest
