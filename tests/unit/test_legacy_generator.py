from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime

import pytest

from smartrehab.catalog import load_catalog
from smartrehab.generate import identity
from smartrehab.generate.legacy import FlawRates, generate, simulate
from spark_jobs.legacy.parse import iter_rows

TABLES = ["ZJ_RYJBXX", "ZJ_RSDJ", "ZJ_FQFQ", "SH_XFJL", "XL_SCL90"]


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_same_seed_same_bytes(tmp_path, catalog):
    a = generate(catalog, tmp_path / "a", 0.01, 5, date(2026, 11, 20), days=1, tables=TABLES)
    b = generate(catalog, tmp_path / "b", 0.01, 5, date(2026, 11, 20), days=1, tables=TABLES)
    for da, db in zip(a, b, strict=True):
        for name in TABLES:
            assert da.files[name].read_bytes() == db.files[name].read_bytes()
    c = generate(catalog, tmp_path / "c", 0.01, 6, date(2026, 11, 20), tables=TABLES)
    assert c[0].files["ZJ_RYJBXX"].read_bytes() != a[0].files["ZJ_RYJBXX"].read_bytes()


def test_population_scales_and_stays_within_capacity(catalog):
    small = simulate(catalog, 0.02, 1, date(2026, 11, 20))
    big = simulate(catalog, 0.1, 1, date(2026, 11, 20))
    assert 3 < len(big.admissions) / len(small.admissions) < 7
    day = date(2026, 6, 1)
    for centre, beds in big.capacity.items():
        present = [a for a in big.admissions if a.centre == centre and a.admitted_on <= day
                   and (a.released_on is None or a.released_on > day)]
        assert 0.7 * beds <= len(present) <= beds
    for p in big.persons.values():
        assert identity.valid_id_number(p.id_number)


def test_files_use_the_catalog_encoding(tmp_path, catalog):
    d = generate(catalog, tmp_path, 0.01, 5, date(2026, 11, 20), tables=TABLES, rates=FlawRates(truncated_file=0))
    raw = d[0].files["XL_SCL90"].read_bytes()
    assert raw.decode(catalog.table("XL_SCL90").encoding).startswith("\t".join(catalog.table("XL_SCL90").columns))
    with pytest.raises(UnicodeDecodeError):
        d[0].files["ZJ_RYJBXX"].read_bytes().decode("utf-8")


def test_manifest_records_every_injected_flaw_where_it_is(tmp_path, catalog):
    rates = FlawRates(bad_id_checksum=0.2, duplicate_row=0.05, unknown_code=0.02, truncated_file=0)
    d = generate(catalog, tmp_path, 0.01, 5, date(2026, 11, 20), tables=["ZJ_RYJBXX"], rates=rates)[0]
    manifest = json.loads((tmp_path / "_generator" / "legacy_20261120.json").read_text(encoding="utf-8"))
    assert manifest["rows"]["ZJ_RYJBXX"] == d.rows["ZJ_RYJBXX"]
    table = catalog.table("ZJ_RYJBXX")
    records = {r.line: r for r in iter_rows(d.files["ZJ_RYJBXX"], table)}   # by the physical line each starts on
    starts = sorted(records)
    cols = table.columns
    kinds = {f["kind"] for f in manifest["flaws"]}
    assert {"bad_id_checksum", "duplicate_row"} <= kinds
    for f in manifest["flaws"]:
        line = records[f["line"]].values
        if f["kind"] == "bad_id_checksum":
            assert not identity.valid_id_number(line[cols.index("SFZHM")])
        if f["kind"] == "duplicate_row":
            before = records[starts[starts.index(f["line"]) - 1]]
            assert records[f["line"]].sha256 == before.sha256 and line == before.values
        if f["kind"] == "unknown_code":
            assert line[cols.index(f["column"])] == "ZZ"


def test_incremental_delivery_carries_releases_and_corrections(tmp_path, catalog):
    ds = generate(catalog, tmp_path, 0.05, 5, date(2026, 11, 20), days=2, tables=["ZJ_RYJBXX", "ZJ_RSDJ"])
    assert all(d.rows["ZJ_RSDJ"] < ds[0].rows["ZJ_RSDJ"] / 10 for d in ds[1:])
    assert any(f.kind == "correction" for d in ds[1:] for f in d.flaws)


def _csv_rows(delivery, catalog, table):
    """The file's records as RFC 4180 reads them (a quoted field may hold a line break)."""
    t = catalog.table(table)
    text = delivery.files[table].read_bytes().decode(t.encoding)
    records = list(csv.reader(io.StringIO(text, newline=""), delimiter=t.delimiter))
    return [dict(zip(records[0], r, strict=False)) for r in records[1:] if r]


def test_indicator_inputs_are_shaped_like_real_records(tmp_path, catalog):
    tables = ["ZJ_RYJBXX", "ZJ_RSDJ", "ZD_PGJL", "ZD_SLTD", "YL_CRBS", "AQ_SJDJ", "SY_HFJL"]
    d = generate(catalog, tmp_path, 0.02, 5, date(2026, 11, 20), tables=tables,
                 rates=FlawRates(mixed_date_format=0, fullwidth_digits=0, unknown_code=0, all_fields_wrong=0,
                                 truncated_file=0, orphan_reference=0, oversized_text=0, cross_field=0))[0]
    # 生理脱毒 items are 0 or 20, and both passing and failing assessments occur
    items = _csv_rows(d, catalog, "ZD_SLTD")
    cols = ("JCYXDF", "TZYYDF", "JXZZDF", "JYZZDF", "JSZZDF")
    assert {r[c] for r in items for c in cols} == {"0", "20"}
    totals = {sum(int(r[c]) for c in cols) for r in items}
    assert 100 in totals and min(totals) < 100
    assert all(r["ZF"] == str(sum(int(r[c]) for c in cols)) for r in items)
    # rule versions are configured codes
    assert {r["GZBB"] for r in _csv_rows(d, catalog, "ZD_PGJL")} <= {"BJ-2021"}
    # every admission's first (intake) screening is within 10 days of admission
    admitted = {r["RSBH"]: r["RSRQ"] for r in _csv_rows(d, catalog, "ZJ_RSDJ")}
    first: dict[str, str] = {}
    for r in _csv_rows(d, catalog, "YL_CRBS"):
        if r["SCLX"] == "1":
            first[r["RSBH"]] = min(first.get(r["RSBH"], "99999999"), r["SCRQ"])
    start = "20211120"
    late = [k for k, v in first.items() if admitted[k] >= start
            and (date(int(v[:4]), int(v[4:6]), int(v[6:])) - date(int(admitted[k][:4]), int(admitted[k][4:6]),
                                                                  int(admitted[k][6:]))).days > 10]
    assert first and not late
    # some incidents count against 六无 (types 01-06), most do not, and the flag agrees with the type
    incidents = _csv_rows(d, catalog, "AQ_SJDJ")
    liuwu = [r for r in incidents if r["SFLW"] == "1"]
    assert liuwu and len(liuwu) < len(incidents) / 3
    assert all((r["SJLX"] in ("01", "02", "03", "04", "05", "06")) == (r["SFLW"] == "1") for r in incidents)
    # follow-ups come after a release, at their milestone, with both abstinence and relapse
    released = {r["RSBH"]: r["JCRQ"] for r in _csv_rows(d, catalog, "ZJ_RSDJ") if r["JCRQ"]}
    follow = _csv_rows(d, catalog, "SY_HFJL")
    assert follow and all(r["RSBH"] in released and r["HFRQ"] > released[r["RSBH"]] for r in follow)
    assert {"1", "2"} <= {r["HFJG"] for r in follow}
    months = {"03": 3, "06": 6, "12": 12, "24": 24, "36": 36}
    assert all(abs(int(r["JCTS"]) - months[r["HFJD"]] * 30.4) <= 8 for r in follow)


def _records(delivery, table) -> dict[int, dict[str, str]]:
    """The file's records by the physical line each starts on, as ingestion reads them."""
    return {r.line: dict(zip(table.columns, r.values, strict=True))
            for r in iter_rows(delivery.files[table.name], table) if r.values is not None}


def _all_id_flaws(rate: float) -> identity.IdFlawRates:
    return identity.IdFlawRates(fifteen_digit=rate, fullwidth=rate, lowercase_x=rate, invalid_birth_date=rate,
                                future_birth_date=rate, birth_before_1900=rate)


def test_id_flaws_reach_the_files_as_the_manifest_says(tmp_path, catalog):
    """The GB 11643 flaws of smartrehab.generate.identity are delivered in the files (person, family and
    visitor ID numbers), each where the manifest says, breaking exactly the rule it names."""
    from smartrehab import citizen_id

    day = date(2026, 11, 20)
    tables = ["ZJ_RYJBXX", "ZJ_RSDJ", "ZJ_JTCY"]
    rates = FlawRates(bad_id_checksum=0, all_fields_wrong=0, truncated_file=0, id_flaws=_all_id_flaws(0.05))
    d = generate(catalog, tmp_path, 0.01, 5, day, tables=tables, rates=rates)[0]
    seen = set()
    for f in d.flaws:
        if f.kind not in identity.ID_FLAW_RULES:
            continue
        table = catalog.table(f.file.split(".")[0])
        row = _records(d, table)[f.line]
        value = row[f.column]
        assert value != f.detail and row[table.key[0]] == f.key
        result = citizen_id.check(value, day)
        assert result.failure == identity.ID_FLAW_RULES[f.kind], (f, value)
        if result.ok:
            assert result.value == f.detail and result.converted == (f.kind == "id_15_digit")
        seen.add((table.name, f.kind))
    assert {k for _, k in seen} == set(identity.ID_FLAW_RULES)
    assert {t for t, _ in seen} == {"ZJ_RYJBXX", "ZJ_JTCY"}


def test_id_flaws_draw_from_their_own_stream(tmp_path, catalog):
    """Turning the ID flaws off changes the ID cells they hit and nothing else: no other flaw moves."""
    day = date(2026, 11, 20)
    on = generate(catalog, tmp_path / "on", 0.01, 5, day, tables=["ZJ_RYJBXX"],
                  rates=FlawRates(id_flaws=_all_id_flaws(0.05)))[0]
    off = generate(catalog, tmp_path / "off", 0.01, 5, day, tables=["ZJ_RYJBXX"],
                   rates=FlawRates(id_flaws=_all_id_flaws(0.0)))[0]
    id_kinds = set(identity.ID_FLAW_RULES)
    assert any(f.kind in id_kinds for f in on.flaws)
    assert [f for f in on.flaws if f.kind not in id_kinds] == off.flaws
    hit = {f.line for f in on.flaws if f.kind in id_kinds}
    a = on.files["ZJ_RYJBXX"].read_bytes().decode("gb18030").split("\r\n")
    b = off.files["ZJ_RYJBXX"].read_bytes().decode("gb18030").split("\r\n")
    assert len(a) == len(b)
    assert {n + 1 for n, (x, y) in enumerate(zip(a, b, strict=True)) if x != y} == hit


def test_free_text_and_cross_field_flaws_are_where_the_manifest_says(tmp_path, catalog):
    """Multi-line free text is delivered as quoted CSV fields holding a line break (the manifest's lines stay
    the physical ones after them); an oversized text is longer than its catalog length; a cross-field flaw
    breaks the rule of catalog/row_rules.yaml it names, and clean rows keep every such rule."""
    tables = ["ZJ_RYJBXX", "ZJ_RSDJ", "ZJ_JTCY", "ZJ_TSDJ", "JY_KCAP", "XL_WJGY"]
    rates = FlawRates(multiline_text=0.2, oversized_text=0.01, cross_field=0.05, truncated_file=0, all_fields_wrong=0,
                      duplicate_row=0, mixed_date_format=0, fullwidth_digits=0)
    d = generate(catalog, tmp_path, 0.01, 5, date(2026, 11, 20), tables=tables, rates=rates)[0]
    seen: dict[str, int] = {}
    for f in d.flaws:
        if f.kind not in ("multiline_text", "oversized_text", "cross_field"):
            continue
        table = catalog.table(f.file.split(".")[0])
        row = _records(d, table)[f.line]
        assert row[table.key[0]] == f.key, f
        if f.kind == "multiline_text":
            assert row[f.column] == f.detail and "\r\n" in f.detail and len(f.detail) <= table.item(f.column).length
        elif f.kind == "oversized_text":
            assert len(row[f.column]) > table.item(f.column).length
        else:
            rule = next(r for r in catalog.row_rules.rules_of(table.name) if r.code == f.detail)
            p = rule.params
            if rule.rule == "not_before":
                assert row[p["column"]] < row[p["than"]], (f, row)
            else:
                start, end = (datetime.strptime(row[p[k]], "%Y-%m-%d %H:%M:%S") for k in ("start", "end"))
                assert abs((end - start).total_seconds() / 60 - int(row[p["value"]])) > p["tolerance"]
        seen[f.kind] = seen.get(f.kind, 0) + 1
    assert set(seen) == {"multiline_text", "oversized_text", "cross_field"}, seen
    physical = d.files["ZJ_RYJBXX"].read_bytes().count(b"\n")
    assert physical > d.rows["ZJ_RYJBXX"] + 1      # some records span several lines
    # Clean rows keep the cross-field rules (independently drawn class and crisis times are put in order).
    flagged = {(f.file, f.line) for f in d.flaws}
    for name in ("JY_KCAP", "XL_WJGY", "ZJ_TSDJ"):
        table = catalog.table(name)
        rules = [r for r in catalog.row_rules.rules_of(name) if r.rule == "not_before"]
        clean = [r for line, r in _records(d, table).items() if (f"{name}.csv", line) not in flagged]
        assert clean and rules
        assert all(not (r[x.params["column"]] and r[x.params["than"]]) or r[x.params["column"]] >= r[x.params["than"]]
                   for r in clean for x in rules)
