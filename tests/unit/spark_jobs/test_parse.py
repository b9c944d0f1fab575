"""Reading legacy files: every line accounted for, file-level faults rejected with a clear message."""

from __future__ import annotations

import pytest

from smartrehab.catalog import load_catalog
from spark_jobs.legacy.parse import FileRejected, iter_rows


def _read(path, table):
    return list(iter_rows(path, table))


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _write(tmp_path, name, text, encoding="gb18030"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def test_gb18030_csv_rows_keep_their_line_numbers(tmp_path, catalog):
    t = catalog.table("ZJ_RSDJ")
    body = ",".join(t.columns) + "\r\n" + "RS1,P1,BJ01,20240101,24,01,01,,,2024-01-01 17:00:00\r\n" \
        + "RS2,P2,BJ01,20240102,24,01,01,,,2024-01-02 17:00:00\r\n"
    rows = _read(_write(tmp_path, "ZJ_RSDJ.csv", body), t)
    assert [r.line for r in rows] == [2, 3]
    assert rows[1].values[0] == "RS2" and not rows[1].error


def test_truncated_last_line_is_flagged_not_dropped(tmp_path, catalog):
    t = catalog.table("ZJ_RSDJ")
    body = ",".join(t.columns) + "\r\nRS1,P1,BJ01,20240101,24,01,01,,,2024-01-01 17:00:00\r\nRS2,P2,BJ0"
    rows = _read(_write(tmp_path, "ZJ_RSDJ.csv", body), t)
    assert [(r.line, r.error) for r in rows] == [(2, ""), (3, "truncated")]


def test_wrong_column_count_is_a_row_error(tmp_path, catalog):
    t = catalog.table("ZJ_RSDJ")
    body = ",".join(t.columns) + "\nRS1,P1,BJ01\n"
    rows = _read(_write(tmp_path, "ZJ_RSDJ.csv", body), t)
    assert rows[0].error == "column_count" and rows[0].values is None and "RS1" in rows[0].raw_text


def test_utf8_file_declared_gb18030_is_rejected_with_reason(tmp_path, catalog):
    t = catalog.table("ZJ_RYJBXX")
    body = ",".join(t.columns) + "\n1101,张三,110101199001011234,1,01,19900101,60,110101,北京,13800000000,201,2024-01-01 09:00:00\n"
    with pytest.raises(FileRejected) as exc:
        _read(_write(tmp_path, "ZJ_RYJBXX.csv", body, "utf-8"), t)
    assert exc.value.rule == "encoding" and "ZJ_RYJBXX.csv" in str(exc.value) and "UTF-8" in str(exc.value)


def test_header_mismatch_names_missing_and_unexpected_columns(tmp_path, catalog):
    t = catalog.table("ZJ_RSDJ")
    cols = t.columns[:-1] + ["GXSJ_NEW"]
    with pytest.raises(FileRejected) as exc:
        _read(_write(tmp_path, "ZJ_RSDJ.csv", ",".join(cols) + "\n"), t)
    msg = str(exc.value)
    assert exc.value.rule == "header" and "line 1" in msg and "GXSJ" in msg and "GXSJ_NEW" in msg


def test_undecodable_bytes_become_an_encoding_row_error(tmp_path, catalog):
    t = catalog.table("ZJ_RSDJ")
    good = (",".join(t.columns) + "\nRS1,P1,BJ01,20240101,24,01,01,,,2024-01-01 17:00:00\n").encode("gb18030")
    bad = b"RS2,P2,\x81\x20\xff,20240101,24,01,01,,,2024-01-01 17:00:00\n"
    p = tmp_path / "ZJ_RSDJ.csv"
    p.write_bytes(good + bad)
    rows = _read(p, t)
    assert [r.error for r in rows] == ["", "encoding"]
    assert "not valid gb18030" in rows[1].raw_text


def test_fixed_width_rows_split_by_catalog_widths(tmp_path, catalog):
    from smartrehab.generate.legacy import render

    t = catalog.table("SH_XFJL")
    row = {c: "" for c in t.columns}
    row[t.key[0]] = "XF0001"
    row[t.version_column] = "2024-01-01 18:00:00"
    lines = render(t, [row])
    p = tmp_path / "SH_XFJL.txt"
    p.write_bytes(("\r\n".join(lines) + "\r\n").encode(t.encoding))
    rows = _read(p, t)
    assert len(rows) == 1 and rows[0].values[t.columns.index(t.key[0])] == "XF0001"
    short = tmp_path / "short.txt"
    short.write_bytes(b"XF0002   \r\n")
    assert _read(short, t)[0].error == "record_length"
