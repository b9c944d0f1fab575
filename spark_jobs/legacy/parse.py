"""Read one legacy export file into raw rows: no Spark, no typing, nothing dropped.

Every record becomes a ``RawRow`` with its physical line number (the line it starts on), its raw values
(or a parse error) and a checksum. A delimited file (format ``csv``, whatever its delimiter: comma, tab or
bar) is read as RFC 4180 records: a field in double quotes may hold the delimiter, doubled quotes and line
breaks, so a record may span several physical lines (at most ``max_record_lines``, catalog/row_rules.yaml);
the line numbers of the records after it stay the physical ones. File-level faults (wrong encoding, a
header that does not match the catalog) raise ``FileRejected`` with a message that names the file, the
line and the rule.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from smartrehab.catalog import LegacyTable


class FileRejected(Exception):
    """The whole file cannot be read as its catalog entry says; nothing of it is loaded."""

    def __init__(self, path: Path, rule: str, message: str):
        super().__init__(f"{path.name}: [{rule}] {message}")
        self.path, self.rule, self.message = path, rule, message


class RawRow(NamedTuple):     # a tuple: one is made per source line, millions per full load
    line: int                  # physical line number in the file (a CSV header is line 1)
    values: tuple[str, ...] | None
    sha256: str                # checksum of the raw line's bytes
    error: str = ""            # rule broken while reading, e.g. "column_count", "encoding"
    raw_text: str = ""         # the line as decoded, kept only for rows that could not be split


def _looks_utf8(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return any(ord(c) > 0x7F for c in text)


def iter_rows(path: Path, table: LegacyTable, max_record_lines: int = 20) -> Iterator[RawRow]:
    """The file's rows, one at a time (a full-load file holds millions). File-level faults (encoding,
    header) raise ``FileRejected`` here, before the first row."""
    data = path.read_bytes()
    enc = table.encoding.lower()
    if enc in ("gb18030", "gbk", "gb2312") and _looks_utf8(data):
        raise FileRejected(path, "encoding",
                           f"the file is UTF-8 but the catalog says {table.encoding}; "
                           "ask the source system to re-export it, or correct catalog/tables.yaml")
    lines = data.split(b"\n")
    complete = data.endswith(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    first_data = 0
    if table.file_format == "csv":
        if not lines:
            raise FileRejected(path, "header", "the file is empty: no header line")
        header = lines[0].rstrip(b"\r").decode(enc, errors="replace").lstrip("\ufeff")
        got = [h.strip() for h in header.split(table.delimiter)]
        if got != table.columns:
            missing = [c for c in table.columns if c not in got]
            extra = [c for c in got if c not in table.columns]
            raise FileRejected(path, "header",
                               f"line 1: header does not match catalog table {table.name}: "
                               f"missing {missing or 'none'}, unexpected {extra or 'none'}, "
                               f"expected order {table.columns}")
        first_data = 1
        return _records(lines, first_data, complete, table, enc, max(1, max_record_lines))
    return _rows(lines, first_data, complete, table, enc)


def _rows(lines: list[bytes], first_data: int, complete: bool, table: LegacyTable, enc: str) -> Iterator[RawRow]:
    """Fixed-width records: one a line, fields cut by the catalog widths (in bytes of the file's encoding)."""
    width = sum(table.widths)
    spans, pos = [], 0
    for w in table.widths:
        spans.append((pos, pos + w))
        pos += w
    for n in range(first_data + 1, len(lines) + 1):
        raw = lines[n - 1].rstrip(b"\r")
        lines[n - 1] = b""                  # let the line go once read
        digest = hashlib.sha256(raw).hexdigest()
        if not complete and n == len(lines):
            yield RawRow(n, None, digest, "truncated", "the file ends in the middle of this line (export cut short)")
            continue
        try:
            text = raw.decode(enc)
        except UnicodeDecodeError as exc:
            yield RawRow(n, None, digest, "encoding",
                         f"bytes {exc.start}-{exc.end} are not valid {table.encoding}: {raw[:200].hex()}")
            continue
        if not text.strip():
            yield RawRow(n, None, digest, "empty_line", text)
            continue
        # Widths are in bytes of the file's encoding: cut the line's own bytes (it decoded cleanly).
        if len(raw) != width:
            yield RawRow(n, None, digest, "record_length", text)
            continue
        yield RawRow(n, tuple(raw[a:b].decode(enc, errors="replace").strip() for a, b in spans), digest)


# States of the RFC 4180 scan (quote_open): at the start of a field, inside an unquoted field, inside a quoted
# field, just after a quote inside a quoted field (the field's end, or the first half of a doubled quote).
_START, _PLAIN, _QUOTED, _QUOTE = range(4)


def quote_open(text: str, delimiter: str, state: int = _START) -> int:
    """The scan state after ``text`` (from ``state``): ``_QUOTED`` means a quoted field is still open, so the
    record goes on after the line break. A quote inside an unquoted field is a plain character (as Python's
    csv module reads it), so only a field that starts with a quote can hold a line break."""
    for ch in text:
        if state == _QUOTED:
            if ch == '"':
                state = _QUOTE
        elif state == _QUOTE:
            state = _QUOTED if ch == '"' else (_START if ch == delimiter else _PLAIN)
        elif ch == delimiter:
            state = _START
        elif state == _START:
            state = _QUOTED if ch == '"' else _PLAIN
    return state


def _records(lines: list[bytes], first_data: int, complete: bool, table: LegacyTable, enc: str,
             max_lines: int) -> Iterator[RawRow]:
    """Delimited records (RFC 4180), each reported at the physical line it starts on. A record's checksum is
    over its bytes as delivered (its inner line breaks included), and its values keep those line breaks."""
    ncols = len(table.columns)
    delim = table.delimiter
    total = len(lines)
    n = first_data + 1
    while n <= total:
        raw = lines[n - 1].rstrip(b"\r")
        digest = hashlib.sha256(raw).hexdigest()
        if not complete and n == total:
            yield RawRow(n, None, digest, "truncated", "the file ends in the middle of this line (export cut short)")
            return
        try:
            text = raw.decode(enc)
        except UnicodeDecodeError as exc:
            yield RawRow(n, None, digest, "encoding",
                         f"bytes {exc.start}-{exc.end} are not valid {table.encoding}: {raw[:200].hex()}")
            n += 1
            continue
        if not text.strip():
            yield RawRow(n, None, digest, "empty_line", text)
            n += 1
            continue
        if '"' not in text:
            # Most lines hold no quote: a plain split is the same parse, several times faster.
            lines[n - 1] = b""
            parsed = text.split(delim)
            if len(parsed) != ncols:
                yield RawRow(n, None, digest, "column_count", text)
            else:
                yield RawRow(n, tuple(v.strip() for v in parsed), digest)
            n += 1
            continue
        # A quoted field: the record goes on over the next lines while a quote is open.
        state, end, parts, error = quote_open(text, delim), n, [lines[n - 1]], ""
        while state == _QUOTED and not error:
            if end - n + 1 >= max_lines:
                error = "unclosed_quote"
            elif end == total or (not complete and end + 1 == total):
                error = "truncated" if not complete else "unclosed_quote"
            else:
                end += 1
                parts.append(lines[end - 1])
                try:
                    state = quote_open("\n" + lines[end - 1].rstrip(b"\r").decode(enc), delim, state)
                except UnicodeDecodeError:
                    error = "encoding"
        if error:
            # The record cannot be closed: its first line is reported, and reading goes on at the next line
            # (a stray quote must not swallow the rest of the file).
            why = {"unclosed_quote": f"a quoted field opened on this line is not closed within {max_lines} lines",
                   "truncated": "the file ends inside a quoted field of this record (export cut short)",
                   "encoding": f"a line of this record is not valid {table.encoding}"}[error]
            yield RawRow(n, None, digest, error, f"{why}: {text[:200]}")
            if error == "truncated":
                return              # the rest of the file is this cut record
            n += 1
            continue
        for i in range(n - 1, end):
            lines[i] = b""          # let the lines go once read
        record = b"\n".join(parts[:-1] + [parts[-1].rstrip(b"\r")])
        body = record.decode(enc)
        digest = hashlib.sha256(record).hexdigest()
        parsed = next(csv.reader([body], delimiter=delim, strict=False))
        if len(parsed) != ncols:
            yield RawRow(n, None, digest, "column_count", body)
        else:
            yield RawRow(n, tuple(v.strip() for v in parsed), digest)
        n = end + 1
