"""The receivers' verifier: check an exchange package against the specification and the sender's public key.

    smartrehab export verify <bag folder or .zip> --public-key sender-sm2.pem [--spec packages.yaml]
    python -m smartrehab.exchange.verify <bag> --public-key sender-sm2.pem

It needs only the spec (docs/exchange/packages.yaml and codes.csv beside it) and the public key, and
checks, reporting every failure with the file and the rule (README.md §10):
the BagIt declaration; both payload manifests (every file listed, none missing, none extra, every
digest); both tag manifests; the detached signature over the tag manifest; bag-info.txt (fields,
Payload-Oxum, record counts against the rows); each data file against its schema (encoding, header,
column count, types, codes, empty fields, period, key order, direct identifiers the receiver is not
authorised for). Exit status 0: valid; 1: invalid; 2: the package, key or spec could not be read.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path, PurePosixPath

from smartrehab import citizen_id
from smartrehab.exchange import crypto
from smartrehab.exchange.spec import ENCODINGS, Column, FileSpec, Spec, SpecError, load_spec, parse_period

ALGORITHMS = ("sha256", "sm3")
TAG_FILES = ("bag-info.txt", "bagit.txt", "manifest-sha256.txt", "manifest-sm3.txt")
SIGNATURE_ALGORITHMS = {"SM2-with-SM3": ("sm2", "tagmanifest-sm3.txt"), "Ed25519": ("ed25519", "tagmanifest-sha256.txt")}
REQUIRED_INFO = ("Source-Organization", "External-Identifier", "Bagging-Date", "Payload-Oxum", "Exchange-Spec-Version",
                 "Exchange-Package", "Exchange-Schema-Version", "Exchange-Period", "Exchange-Period-Status",
                 "Exchange-Receiver", "Payload-Encoding", "Generated-At", "Signature-Algorithm", "Signature-File",
                 "Signing-Key-Fingerprint")
MAX_PER_RULE = 10
_INT = r"-?(?:0|[1-9][0-9]*)"
_PATTERNS = {
    "integer": re.compile(_INT),
    "date": re.compile(r"\d{4}-\d{2}-\d{2}"),
    "month": re.compile(r"\d{4}-(?:0[1-9]|1[0-2])"),
    "datetime": re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"),
    "boolean": re.compile(r"[01]"),
    "pseudonym": re.compile(r"[0-9a-f]{64}"),
    "id_number": re.compile(r"[0-9]{17}[0-9X]"),
}


class Unreadable(Exception):
    """The package cannot be opened at all (not a folder or zip, unsafe paths)."""


@dataclass
class Finding:
    file: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: [{self.rule}] {self.message}"


@dataclass
class Report:
    bag: str
    findings: list[Finding] = field(default_factory=list)
    notices: list[Finding] = field(default_factory=list)
    info: dict[str, str] = field(default_factory=dict)
    _counts: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return not self.findings

    def fail(self, file: str, rule: str, message: str) -> None:
        n = self._counts.get((file, rule), 0) + 1
        self._counts[(file, rule)] = n
        if n <= MAX_PER_RULE:
            self.findings.append(Finding(file, rule, message))
        elif n == MAX_PER_RULE + 1:
            self.findings.append(Finding(file, rule, "further failures of this rule in this file are not listed"))

    def note(self, file: str, rule: str, message: str) -> None:
        self.notices.append(Finding(file, rule, message))

    def rules(self) -> set[tuple[str, str]]:
        return {(f.file, f.rule) for f in self.findings}

    def text(self) -> str:
        head = (f"VALID {self.bag}" if self.ok else f"INVALID {self.bag}: {len(self.findings)} failure(s)")
        desc = ", ".join(f"{k} {v}" for k, v in self.info.items())
        lines = [head + (f" ({desc})" if desc else "")]
        lines += [f"  FAIL {f}" for f in self.findings]
        lines += [f"  note {f}" for f in self.notices]
        return "\n".join(lines)


# ---- reading a bag -----------------------------------------------------------------------------------
def read_bag(path: Path) -> tuple[str, dict[str, bytes]]:
    """(bag name, relative path -> bytes) of a bag folder or a zip holding one bag folder."""
    path = Path(path)
    if path.is_dir():
        files = {}
        for p in sorted(path.rglob("*")):
            rel = p.relative_to(path).as_posix()
            if p.is_symlink():
                raise Unreadable(f"{rel} is a symbolic link; a bag holds regular files only")
            if p.is_file():
                files[rel] = p.read_bytes()
        return path.name, files
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = [i.filename for i in zf.infolist() if not i.is_dir()]
            tops = {n.split("/", 1)[0] for n in names}
            if len(tops) != 1 or any("/" not in n for n in names):
                raise Unreadable(f"{path.name}: the zip must hold exactly one bag folder (found {sorted(tops)})")
            files = {}
            for n in names:
                rel = PurePosixPath(n.split("/", 1)[1])
                if rel.is_absolute() or ".." in rel.parts or "\\" in n:
                    raise Unreadable(f"{path.name}: unsafe entry name {n!r}")
                files[rel.as_posix()] = zf.read(n)
            return tops.pop(), files
    raise Unreadable(f"{path} is neither a bag folder nor a zip file")


def parse_manifest(text: str, name: str, report: Report, alg: str) -> dict[str, str]:
    out: dict[str, str] = {}
    width = 64
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = re.fullmatch(r"([0-9a-fA-F]+)[ \t]+(.+)", line)
        if not m or len(m.group(1)) != width:
            report.fail(name, "manifest.syntax", f"line {n} is not '<{alg} hex digest> <path>': {line!r}")
            continue
        p = m.group(2).replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")
        if p in out:
            report.fail(name, "manifest.duplicate", f"line {n} lists {p} a second time")
        out[p] = m.group(1).lower()
    return out


def parse_bag_info(text: str, report: Report) -> dict[str, list[str]]:
    info: dict[str, list[str]] = {}
    last = None
    for n, line in enumerate(text.splitlines(), 1):
        if line[:1] in (" ", "\t") and last:
            info[last][-1] += " " + line.strip()
            continue
        label, sep, value = line.partition(":")
        if not sep or not label.strip():
            report.fail("bag-info.txt", "bag-info.syntax", f"line {n} is not 'Label: value': {line!r}")
            continue
        last = label.strip()
        info.setdefault(last, []).append(value.strip())
    return info


# ---- cells -------------------------------------------------------------------------------------------
def check_cell(col: Column, text: str, codes: dict[str, frozenset[str]]) -> str | None:
    """Why ``text`` is not a valid value of ``col`` (None when it is)."""
    if text == "":
        return None if col.nullable else "empty, but the column may not be empty"
    t = col.type
    if t == "string":
        return None
    if t == "code":
        table = codes.get(col.code_table)
        if table is None:
            return f"code table {col.code_table} is not in codes.csv of the spec"
        return None if text in table else f"'{text}' is not a code of {col.code_table}"
    if t == "decimal":
        pat = _INT + (rf"\.[0-9]{{{col.scale}}}" if col.scale else "")
        if not re.fullmatch(pat, text) or (text.startswith("-") and not text.strip("-0.")):
            return f"'{text}' is not a decimal with exactly {col.scale} digit(s) after the point"
        return None
    if not _PATTERNS[t].fullmatch(text):
        return f"'{text}' is not of type {t}"
    if t == "id_number":
        checked = citizen_id.check(text)
        return None if checked.ok else f"a value of type id_number breaks GB 11643 ({checked.failure})"
    try:
        if t == "date":
            date.fromisoformat(text)
        elif t == "datetime":
            datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return f"'{text}' is not a real {t}"
    return None


def _period_day(col: Column, text: str) -> date:
    if col.type == "month":
        return date(int(text[:4]), int(text[5:7]), 1)
    return date.fromisoformat(text[:10])


def check_data_file(spec: Spec, fspec: FileSpec, receiver, version: tuple[int, int], raw: bytes, encoding: str,
                    period, report: Report) -> int | None:
    """Check one data file; return its number of rows (None when it could not be parsed)."""
    name = fspec.path
    if encoding == "UTF-8" and raw.startswith(b"\xef\xbb\xbf"):
        report.fail(name, "encoding", "starts with a byte-order mark; UTF-8 files are written without one")
        raw = raw[3:]
    try:
        text = raw.decode(ENCODINGS[encoding], errors="strict")
    except UnicodeDecodeError as exc:
        report.fail(name, "encoding", f"not valid {encoding} at byte {exc.start}")
        return None
    if text and not text.endswith("\r\n"):
        report.fail(name, "csv.line-end", "the last record does not end with CRLF")
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        report.fail(name, "csv.syntax", f"not RFC 4180 CSV: {exc}")
        return None
    if re.search(r"(?<!\r)\n", re.sub(r'"(?:[^"]|"")*"', "", text)):
        report.fail(name, "csv.line-end", "a record ends with LF instead of CRLF")
    if not records:
        report.fail(name, "csv.header", "the file is empty; even a file without rows has its header")
        return None
    header, rows = records[0], records[1:]
    expected = spec.columns_for(fspec, receiver, min(version, spec.packages[fspec.package].version))
    names = [c.name for c in expected]
    all_cols = {c.name: c for c in fspec.columns}
    for h in header:
        c = all_cols.get(h)
        if c is not None and not receiver.authorised(fspec, c):
            report.fail(name, "privacy", f"column {h} is a direct identifier ({fspec.field_id(h)}) that receiver "
                                         f"{receiver.id} is not authorised for")
    newer = version > spec.packages[fspec.package].version
    if header[:len(names)] != names or (len(header) != len(names) and not newer):
        report.fail(name, "schema.header", f"header {header} differs from the schema's {names}")
        return len(rows)
    if len(header) > len(names):
        report.note(name, "schema.newer", f"columns {header[len(names):]} are newer than this spec; not checked")
    idx = {c.name: i for i, c in enumerate(expected)}
    key_idx = [idx[k] for k in fspec.key if k in idx]
    pcol = fspec.column(fspec.period_column) if fspec.period_column else None
    prev_key, seen = None, set()
    for n, row in enumerate(rows, 2):
        if len(row) != len(header):
            report.fail(name, "schema.column-count", f"line {n} has {len(row)} fields, the header {len(header)}")
            continue
        for c in expected:
            why = check_cell(c, row[idx[c.name]], spec.codes)
            if why:
                report.fail(name, f"type.{c.type}", f"line {n}, column {c.name}: {why}")
        if pcol is not None and not check_cell(pcol, row[idx[pcol.name]], spec.codes):
            v = row[idx[pcol.name]]
            inside = (v == period.label) if pcol.type == "month" else period.contains(_period_day(pcol, v))
            if not inside:
                report.fail(name, "period", f"line {n}: {pcol.name} {v} is outside the period {period.label}")
        key = tuple(row[i] for i in key_idx)
        if key in seen:
            report.fail(name, "key.unique", f"line {n}: key {key} repeats")
        elif prev_key is not None and key < prev_key:
            report.fail(name, "key.order", f"line {n}: rows are not sorted by ({', '.join(fspec.key)})")
        seen.add(key)
        prev_key = key
    return len(rows)


# ---- the whole bag -----------------------------------------------------------------------------------
def verify_bag(path: Path | str, public_key: crypto.PublicKey, spec: Spec | None = None) -> Report:
    spec = spec or load_spec()
    name, files = read_bag(Path(path))
    report = Report(name)
    if "bagit.txt" not in files:
        report.fail("bagit.txt", "bagit.missing", "no bagit.txt: this is not a BagIt bag")
    elif files["bagit.txt"].replace(b"\r\n", b"\n").splitlines() != [b"BagIt-Version: 1.0",
                                                                      b"Tag-File-Character-Encoding: UTF-8"]:
        report.fail("bagit.txt", "bagit.declaration",
                    "must be exactly 'BagIt-Version: 1.0' and 'Tag-File-Character-Encoding: UTF-8'")
    payload = sorted(p for p in files if p.startswith("data/"))
    for alg in ALGORITHMS:
        mname = f"manifest-{alg}.txt"
        if mname not in files:
            report.fail(mname, "manifest.missing", f"the {alg} payload manifest is missing")
            continue
        entries = parse_manifest(files[mname].decode("utf-8", "replace"), mname, report, alg)
        for p, digest in sorted(entries.items()):
            if not p.startswith("data/"):
                report.fail(mname, "manifest.outside-payload", f"{p} is not under data/")
            elif p not in files:
                report.fail(p, f"manifest-{alg}.missing-file", f"listed in {mname} but not in the bag")
            elif crypto.file_digests(files[p])[alg] != digest:
                report.fail(p, f"manifest-{alg}.digest", f"{alg} digest differs from {mname}: the file was changed")
        for p in payload:
            if p not in entries:
                report.fail(p, f"manifest-{alg}.unlisted-file", f"in data/ but not listed in {mname} (a file was added)")
    for alg in ALGORITHMS:
        tname = f"tagmanifest-{alg}.txt"
        if tname not in files:
            report.fail(tname, "tagmanifest.missing", f"the {alg} tag manifest is missing")
            continue
        entries = parse_manifest(files[tname].decode("utf-8", "replace"), tname, report, alg)
        if sorted(entries) != sorted(TAG_FILES):
            report.fail(tname, "tagmanifest.entries", f"lists {sorted(entries)}; the spec requires {list(TAG_FILES)}")
        for p, digest in sorted(entries.items()):
            if p in files and crypto.file_digests(files[p])[alg] != digest:
                report.fail(p, f"tagmanifest-{alg}.digest", f"{alg} digest differs from {tname}: the file was changed")
            elif p not in files:
                report.fail(p, f"tagmanifest-{alg}.missing-file", f"listed in {tname} but not in the bag")
    info = parse_bag_info(files.get("bag-info.txt", b"").decode("utf-8", "replace"), report) \
        if "bag-info.txt" in files else {}
    if "bag-info.txt" not in files:
        report.fail("bag-info.txt", "bag-info.missing", "no bag-info.txt")
        return report
    one = {k: v[0] for k, v in info.items()}
    for label in REQUIRED_INFO:
        if label not in info:
            report.fail("bag-info.txt", "bag-info.field", f"field {label} is missing")
        elif len(info[label]) > 1:
            report.fail("bag-info.txt", "bag-info.field", f"field {label} appears {len(info[label])} times")
    sig_alg = SIGNATURE_ALGORITHMS.get(one.get("Signature-Algorithm", ""))
    expected_tags = set(TAG_FILES) | {f"tagmanifest-{a}.txt" for a in ALGORITHMS}
    if sig_alg:
        expected_tags.add(sig_alg[1] + ".sig")
    for p in sorted(files):
        if not p.startswith("data/") and p not in expected_tags:
            report.fail(p, "bag.unexpected-file", "not part of the package layout (README.md §3)")
    _check_signature(files, one, sig_alg, public_key, report)
    oxum = f"{sum(len(files[p]) for p in payload)}.{len(payload)}"
    if one.get("Payload-Oxum") and one["Payload-Oxum"] != oxum:
        report.fail("bag-info.txt", "bag-info.payload-oxum", f"Payload-Oxum {one['Payload-Oxum']}, the payload is {oxum}")
    _check_content(spec, files, info, one, report)
    return report


def _check_signature(files, one, sig_alg, public_key: crypto.PublicKey, report: Report) -> None:
    if sig_alg is None:
        report.fail("bag-info.txt", "signature.algorithm",
                    f"Signature-Algorithm {one.get('Signature-Algorithm')!r} is not one of {sorted(SIGNATURE_ALGORITHMS)}")
        return
    algorithm, signed = sig_alg
    sig_file = signed + ".sig"
    if one.get("Signature-File") != sig_file:
        report.fail("bag-info.txt", "signature.file", f"Signature-File must be {sig_file} for {one['Signature-Algorithm']}")
    if algorithm != public_key.algorithm:
        report.fail(sig_file, "signature.key-algorithm",
                    f"the package is signed with {algorithm}, the public key given is an {public_key.algorithm} key")
        return
    if one.get("Signing-Key-Fingerprint") != public_key.fingerprint:
        report.note("bag-info.txt", "signature.fingerprint",
                    f"signed by key {one.get('Signing-Key-Fingerprint')}, the key given is {public_key.fingerprint}")
    if sig_file not in files or signed not in files:
        report.fail(sig_file, "signature.missing", f"{sig_file} or {signed} is missing")
        return
    signer_id = one.get("Signer-ID", crypto.DEFAULT_SIGNER_ID) if algorithm == "sm2" else ""
    if algorithm == "sm2" and "Signer-ID" not in one:
        report.fail("bag-info.txt", "signature.signer-id", "an SM2 signature needs the Signer-ID field")
    try:
        good = public_key.verify(files[signed], files[sig_file], signer_id)
    except crypto.SignatureError as exc:
        report.fail(sig_file, "signature.format", str(exc))
        return
    if not good:
        report.fail(sig_file, "signature.invalid",
                    f"the signature over {signed} does not verify with the public key {public_key.fingerprint}: "
                    f"the tag manifest was changed, or the package was signed by another key")


def _check_content(spec: Spec, files, info, one, report: Report) -> None:
    pkg_name, rcv_name = one.get("Exchange-Package", ""), one.get("Exchange-Receiver", "")
    if pkg_name not in spec.packages:
        report.fail("bag-info.txt", "bag-info.package", f"Exchange-Package {pkg_name!r} is not in the spec")
        return
    if rcv_name not in spec.receivers:
        report.fail("bag-info.txt", "bag-info.receiver", f"Exchange-Receiver {rcv_name!r} is not in the spec")
        return
    pkg, rcv = spec.packages[pkg_name], spec.receivers[rcv_name]
    if pkg_name not in rcv.packages:
        report.fail("bag-info.txt", "bag-info.receiver", f"receiver {rcv_name} does not receive {pkg_name}")
    m = re.fullmatch(r"(\d+)\.(\d+)", one.get("Exchange-Schema-Version", ""))
    if not m:
        report.fail("bag-info.txt", "schema.version", "Exchange-Schema-Version is not MAJOR.MINOR")
        return
    version = (int(m.group(1)), int(m.group(2)))
    if version[0] != pkg.version[0]:
        report.fail("bag-info.txt", "schema.version",
                    f"schema {version[0]}.{version[1]} has another major version than the spec's {pkg.schema_version}: "
                    f"a major version is not compatible (README.md §8); get the matching spec")
        return
    if version > pkg.version:
        report.note("bag-info.txt", "schema.newer",
                    f"schema {version[0]}.{version[1]} is newer than the spec's {pkg.schema_version}: checked as "
                    f"{pkg.schema_version}; update the spec to check the additions")
    try:
        period = parse_period(pkg.period, one.get("Exchange-Period", ""))
    except ValueError as exc:
        report.fail("bag-info.txt", "bag-info.period", str(exc))
        return
    if one.get("Exchange-Period-Status") not in ("final", "provisional"):
        report.fail("bag-info.txt", "bag-info.status", "Exchange-Period-Status must be final or provisional")
    if one.get("External-Identifier") != f"{pkg_name}_{period.label}_{rcv_name}":
        report.fail("bag-info.txt", "bag-info.identifier",
                    f"External-Identifier must be {pkg_name}_{period.label}_{rcv_name}")
    try:
        datetime.fromisoformat(one.get("Generated-At", ""))
    except ValueError:
        report.fail("bag-info.txt", "bag-info.generated-at", "Generated-At is not an ISO 8601 date-time")
    encoding = one.get("Payload-Encoding", "")
    if encoding != rcv.encoding:
        report.fail("bag-info.txt", "bag-info.encoding",
                    f"Payload-Encoding {encoding!r}, but receiver {rcv_name} takes {rcv.encoding}")
        encoding = rcv.encoding
    report.info.update({"package": pkg_name, "period": period.label, "receiver": rcv_name,
                        "status": one.get("Exchange-Period-Status", "?")})
    counts: dict[str, str] = {}
    for entry in info.get("Record-Count", []):
        path, _, n = entry.rpartition(" ")
        if path in counts:
            report.fail("bag-info.txt", "bag-info.record-count", f"Record-Count of {path} given twice")
        counts[path] = n
    known = {f.path: f for f in pkg.files.values() if f.since <= version}
    for p in sorted(p for p in files if p.startswith("data/")):
        if p not in known:
            if version > pkg.version:
                report.note(p, "schema.newer", "a file newer than this spec; not checked")
            else:
                report.fail(p, "schema.file", f"not a file of package {pkg_name} {pkg.schema_version}")
    for path, fspec in sorted(known.items()):
        if path not in files:
            report.fail(path, "schema.file", f"the file is missing (package {pkg_name} has {', '.join(sorted(known))})")
            continue
        rows = check_data_file(spec, fspec, rcv, version, files[path], encoding, period, report)
        if path not in counts:
            report.fail("bag-info.txt", "bag-info.record-count", f"no Record-Count for {path}")
        elif rows is not None and counts[path] != str(rows):
            report.fail(path, "bag-info.record-count", f"bag-info.txt says {counts[path]} records, the file has {rows}")
    total = sum(int(n) for n in counts.values() if n.isdigit())
    report.info["rows"] = str(total)
    for path in sorted(set(counts) - set(known)):
        if version <= pkg.version:
            report.fail("bag-info.txt", "bag-info.record-count", f"Record-Count for {path}, which is not a file of the package")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smartrehab export verify",
                                     description="Check an exchange package (bag folder or .zip) against the spec.")
    parser.add_argument("package", help="bag folder or zip")
    parser.add_argument("--public-key", required=True, help="the sender's public key (PEM)")
    parser.add_argument("--spec", default=None, help="packages.yaml of the specification (default: docs/exchange)")
    args = parser.parse_args(argv)
    try:
        spec = load_spec(args.spec)
        key = crypto.load_public_key(Path(args.public_key).read_text(encoding="ascii"))
        report = verify_bag(Path(args.package), key, spec)
    except (OSError, SpecError, crypto.SignatureError, Unreadable, UnicodeDecodeError) as exc:
        print(f"smartrehab export verify: {exc}", file=sys.stderr)
        return 2
    print(report.text())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
