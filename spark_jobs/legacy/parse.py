"""Read one legacy export file into raw rows: no Spark, no typing, nothing dropped.

Every physical line becomes a ``RawRow`` with its line number, its raw values (or a parse error)
and a checksum. File-level faults (wrong encoding, a header that does not match the catalog)
raise ``FileRejected`` with a message that names the file, the line and the rule.
"""

from __future__ import annotations

import csv
import hashlib
import io
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


def iter_rows(path: Path, table: LegacyTable) -> Iterator[RawRow]:
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
    return _rows(lines, first_data, complete, table, enc)


def _rows(lines: list[bytes], first_data: int, complete: bool, table: LegacyTable, enc: str) -> Iterator[RawRow]:
    ncols = len(table.columns)
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
        if table.file_format == "fixed_width":
            # Widths are in bytes of the file's encoding: cut the line's own bytes (it decoded cleanly).
            if len(raw) != width:
                yield RawRow(n, None, digest, "record_length", text)
                continue
            yield RawRow(n, tuple(raw[a:b].decode(enc, errors="replace").strip() for a, b in spans), digest)
            continue
        # Most lines hold no quote: a plain split is the same parse, several times faster.
        parsed = (text.split(table.delimiter) if '"' not in text
                  else next(csv.reader(io.StringIO(text), delimiter=table.delimiter)))
        if len(parsed) != ncols:
            yield RawRow(n, None, digest, "column_count", text)
            continue
        yield RawRow(n, tuple(v.strip() for v in parsed), digest)
