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


# ---- RFC 4180: quoted fields, line breaks inside them, physical line numbers (every delimited format) ----
def _delimited_tables(catalog):
    """One table per delimiter of the catalog's delimited formats, with a long free-text column."""
    out = {}
    for t in catalog.tables.values():
        text = [i.legacy_column for i in t.items if i.data_type == "string" and i.length >= 100]
        if t.file_format == "csv" and text and t.delimiter not in out:
            out[t.delimiter] = (t, text[0])
    return out


def _line(table, values: dict[str, str]) -> str:
    from smartrehab.generate.legacy import render

    row = {c: "" for c in table.columns}
    row.update(values)
    return render(table, [row])[1]


def test_every_delimited_format_of_the_catalog_is_covered(catalog):
    delims = {t.delimiter for t in catalog.tables.values() if t.file_format == "csv"}
    assert delims == set(_delimited_tables(catalog)) == {",", "\t", "|"}


@pytest.mark.parametrize("delim", [",", "\t", "|"])
def test_quoted_line_breaks_stay_in_their_field_and_lines_stay_physical(tmp_path, catalog, delim):
    table, col = _delimited_tables(catalog)[delim]
    key = table.key[0]
    remark = f'第一行{delim}含分隔符\r\n第二行 "引号" 结束'
    body = "\r\n".join([table.delimiter.join(table.columns),
                        _line(table, {key: "K1", col: remark}),                     # lines 2-3
                        _line(table, {key: "K2", col: "一行"}),                       # line 4
                        _line(table, {key: "K3", col: "a\r\n\r\nb"}),                # lines 5-7 (an empty line inside)
                        _line(table, {key: "K4"})]) + "\r\n"                          # line 8
    rows = _read(_write(tmp_path, "t.csv", body, table.encoding), table)
    assert [(r.line, r.error) for r in rows] == [(2, ""), (4, ""), (5, ""), (8, "")]
    by_key = {r.values[table.columns.index(key)]: r.values[table.columns.index(col)] for r in rows}
    assert by_key == {"K1": remark, "K2": "一行", "K3": "a\r\n\r\nb", "K4": ""}
    # The checksum is over the record's bytes as delivered, inner line breaks included.
    import hashlib
    first = _line(table, {key: "K1", col: remark}).encode(table.encoding)
    assert rows[0].sha256 == hashlib.sha256(first).hexdigest()


def test_a_quote_inside_an_unquoted_field_is_a_plain_character(tmp_path, catalog):
    t = catalog.table("ZJ_RSDJ")
    body = ",".join(t.columns) + '\r\nRS1,P1,BJ01,20240101,24,01,01,,,2024-01-01 17:00:00\r\n' \
        'RS2,P"2,BJ01,20240101,24,01,01,,,2024-01-01 17:00:00\r\nRS3,P3,BJ01,20240101,24,01,01,,,2024-01-01 17:00:00\r\n'
    rows = _read(_write(tmp_path, "ZJ_RSDJ.csv", body), t)
    assert [(r.line, r.error) for r in rows] == [(2, ""), (3, ""), (4, "")]
    assert rows[1].values[1] == 'P"2'


def test_an_unclosed_quote_cannot_swallow_the_file(tmp_path, catalog):
    """A quote opened and never closed: its line is an unclosed_quote row after max_record_lines lines, and
    every later record is still read."""
    t = catalog.table("ZJ_RSDJ")
    good = "RS{},P1,BJ01,20240101,24,01,01,,,2024-01-01 17:00:00"
    lines = [",".join(t.columns), good.format(1), 'RS2,"P2,BJ01,20240101,24,01,01,,,2024-01-01 17:00:00']
    lines += [good.format(n) for n in range(3, 8)]
    rows = list(iter_rows(_write(tmp_path, "ZJ_RSDJ.csv", "\r\n".join(lines) + "\r\n"), t, max_record_lines=3))
    assert [(r.line, r.error) for r in rows] == [(2, ""), (3, "unclosed_quote")] + [(n, "") for n in range(4, 9)]
    assert "line" in rows[1].raw_text and "RS2" in rows[1].raw_text
    # At the end of a complete file, a quote still open is unclosed too.
    tail = lines[:2] + ['RS9,"P9,BJ01']
    rows = list(iter_rows(_write(tmp_path, "ZJ_RSDJ.csv", "\r\n".join(tail) + "\r\n"), t))
    assert [(r.line, r.error) for r in rows] == [(2, ""), (3, "unclosed_quote")]


def test_a_file_cut_inside_a_quoted_field_is_one_truncated_row(tmp_path, catalog):
    t = catalog.table("ZJ_RSDJ")
    body = ",".join(t.columns) + '\r\nRS1,P1,BJ01,20240101,24,01,01,,,2024-01-01 17:00:00\r\nRS2,"P\r\n2\r\nmore'
    rows = _read(_write(tmp_path, "ZJ_RSDJ.csv", body), t)
    assert [(r.line, r.error) for r in rows] == [(2, ""), (3, "truncated")]


def test_a_multi_line_record_with_a_wrong_column_count_is_one_row(tmp_path, catalog):
    t = catalog.table("ZJ_RSDJ")
    body = ",".join(t.columns) + '\r\nRS1,"P\r\n1",BJ01\r\nRS2,P2,BJ01,20240101,24,01,01,,,2024-01-01 17:00:00\r\n'
    rows = _read(_write(tmp_path, "ZJ_RSDJ.csv", body), t)
    assert [(r.line, r.error) for r in rows] == [(2, "column_count"), (4, "")]
    assert rows[0].raw_text == 'RS1,"P\r\n1",BJ01'
