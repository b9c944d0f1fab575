from __future__ import annotations

import json
from datetime import date

import pytest

from smartrehab.catalog import load_catalog
from smartrehab.generate import identity
from smartrehab.generate.legacy import FlawRates, generate, simulate

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
    lines = d.files["ZJ_RYJBXX"].read_bytes().decode("gb18030").split("\r\n")
    cols = lines[0].split(",")
    kinds = {f["kind"] for f in manifest["flaws"]}
    assert {"bad_id_checksum", "duplicate_row"} <= kinds
    for f in manifest["flaws"]:
        line = lines[f["line"] - 1].split(",")
        if f["kind"] == "bad_id_checksum":
            assert not identity.valid_id_number(line[cols.index("SFZHM")])
        if f["kind"] == "duplicate_row":
            assert lines[f["line"] - 1] == lines[f["line"] - 2]
        if f["kind"] == "unknown_code":
            assert line[cols.index(f["column"])] == "ZZ"


def test_incremental_delivery_carries_releases_and_corrections(tmp_path, catalog):
    ds = generate(catalog, tmp_path, 0.05, 5, date(2026, 11, 20), days=2, tables=["ZJ_RYJBXX", "ZJ_RSDJ"])
    assert all(d.rows["ZJ_RSDJ"] < ds[0].rows["ZJ_RSDJ"] / 10 for d in ds[1:])
    assert any(f.kind == "correction" for d in ds[1:] for f in d.flaws)


def _csv_rows(delivery, catalog, table):
    t = catalog.table(table)
    lines = [ln for ln in delivery.files[table].read_bytes().decode(t.encoding).split("\r\n") if ln]
    cols = lines[0].split(t.delimiter)
    return [dict(zip(cols, ln.split(t.delimiter), strict=False)) for ln in lines[1:]]


def test_indicator_inputs_are_shaped_like_real_records(tmp_path, catalog):
    tables = ["ZJ_RYJBXX", "ZJ_RSDJ", "ZD_PGJL", "ZD_SLTD", "YL_CRBS", "AQ_SJDJ", "SY_HFJL"]
    d = generate(catalog, tmp_path, 0.02, 5, date(2026, 11, 20), tables=tables,
                 rates=FlawRates(mixed_date_format=0, fullwidth_digits=0, unknown_code=0, all_fields_wrong=0,
                                 truncated_file=0, orphan_reference=0))[0]
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
