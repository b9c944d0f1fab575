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
