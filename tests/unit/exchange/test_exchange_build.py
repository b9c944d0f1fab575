"""Building exchange packages: layout, formats, determinism, idempotence, refusals and privacy."""

from __future__ import annotations

import re
import zipfile
from datetime import date, datetime, timedelta, timezone

import pyarrow as pa
import pytest
from exchange_support import (
    AS_OF_DAY,
    AS_OF_MONTH,
    DAY,
    MONTH,
    PEOPLE,
    bag_files,
    incident_tables,
    kpi_tables,
    make_settings,
    person_event_rows,
    population_tables,
)

from smartrehab import citizen_id
from smartrehab.exchange import crypto
from smartrehab.exchange.bag import BuildRefused, build_package, exchange_pseudonym, write_zip
from smartrehab.exchange.verify import verify_bag


def _pub(settings, alg="sm2"):
    return crypto.signing_key(settings, alg).public


def test_population_bag_layout_contents_and_bag_info(settings, tmp_path):
    bag = build_package(settings, "population_daily", DAY, "moj", population_tables(), tmp_path / "out",
                        as_of=AS_OF_DAY)
    assert bag == tmp_path / "out" / "population_daily_2026-11-19_moj"
    assert sorted(bag_files(bag)) == [
        "bag-info.txt", "bagit.txt", "data/movements.csv", "data/population.csv", "manifest-sha256.txt",
        "manifest-sm3.txt", "tagmanifest-sha256.txt", "tagmanifest-sm3.txt", "tagmanifest-sm3.txt.sig"]
    assert (bag / "bagit.txt").read_bytes() == b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
    # rows sorted by the key whatever the input order; CRLF line ends; no BOM
    assert (bag / "data/movements.csv").read_bytes() == (
        b"movement_date,centre,admissions,transfers,releases\r\n"
        b"2026-11-19,BJ01,3,0,1\r\n2026-11-19,BJ02,0,1,2\r\n")
    pop = (bag / "data/population.csv").read_text().splitlines()
    assert pop[0] == "census_date,centre,zone,population"
    assert pop[1:3] == ["2026-11-19,BJ01,01,10", "2026-11-19,BJ01,02,11"] and len(pop) == 9
    info = (bag / "bag-info.txt").read_text(encoding="utf-8")
    for line in ["Exchange-Package: population_daily", "Exchange-Period: 2026-11-19", "Exchange-Schema-Version: 1.0",
                 "Exchange-Period-Status: final", "Exchange-Receiver: moj", "Payload-Encoding: UTF-8",
                 "Generated-At: 2026-11-20T00:00:00+08:00", "Bagging-Date: 2026-11-20",
                 "Record-Count: data/movements.csv 2", "Record-Count: data/population.csv 8",
                 "Signature-Algorithm: SM2-with-SM3", "Signer-ID: 1234567812345678",
                 "Signature-File: tagmanifest-sm3.txt.sig", f"Signing-Key-Fingerprint: {_pub(settings).fingerprint}"]:
        assert line in info.splitlines(), line
    size = sum(len(v) for k, v in bag_files(bag).items() if k.startswith("data/"))
    assert f"Payload-Oxum: {size}.2" in info
    # both payload manifests list both files with the digests of their bytes, sorted by path
    for alg in ("sha256", "sm3"):
        lines = (bag / f"manifest-{alg}.txt").read_text().splitlines()
        assert lines == [f"{crypto.file_digests((bag / p).read_bytes())[alg]}  {p}"
                         for p in ("data/movements.csv", "data/population.csv")]
        tags = (bag / f"tagmanifest-{alg}.txt").read_text().splitlines()
        assert [t.split()[1] for t in tags] == ["bag-info.txt", "bagit.txt", "manifest-sha256.txt", "manifest-sm3.txt"]
    assert _pub(settings).verify((bag / "tagmanifest-sm3.txt").read_bytes(),
                                 (bag / "tagmanifest-sm3.txt.sig").read_bytes())
    assert verify_bag(bag, _pub(settings)).ok


def test_every_package_builds_and_verifies_from_arrow_pandas_and_rows(settings, tmp_path):
    import pandas as pd

    out = tmp_path / "out"
    tables = kpi_tables()
    cases = [
        ("kpi_monthly", "moj", {"indicators": pa.Table.from_pylist(tables["indicators"]),
                                "zones": pd.DataFrame(tables["zones"])}),
        ("person_events", "moj", {"events": person_event_rows()}),
        ("person_events", "police", {"events": person_event_rows(with_identifiers=True)}),
        ("incident_report", "procuratorate", incident_tables()),
        ("incident_report", "court", incident_tables()),
    ]
    for package, receiver, tabs in cases:
        bag = build_package(settings, package, MONTH, receiver, tabs, out, as_of=AS_OF_MONTH)
        report = verify_bag(bag, _pub(settings))
        assert report.ok, report.text()
    kpi = (out / "kpi_monthly_2026-10_moj" / "data/indicators.csv").read_text().splitlines()
    assert kpi == ["month,centre,indicator_id,value", "2026-10,BJ01,detox_assessment_pass_rate,0.833333",
                   "2026-10,BJ01,liuwu_met,1.000000", "2026-10,BJ02,incident_rate,"]
    inc = (out / "incident_report_2026-10_court" / "data/incidents.csv").read_text().splitlines()
    assert inc[1].split(",")[4] == "2026-10-05 09:30:00"


def test_gb18030_receiver_gets_gb18030_bytes(settings, tmp_path):
    bag = build_package(settings, "person_events", MONTH, "police", {"events": person_event_rows(True)}, tmp_path,
                        as_of=AS_OF_MONTH)
    raw = (bag / "data/events.csv").read_bytes()
    assert "张三".encode("gb18030") in raw
    assert "张三".encode() not in raw
    assert "Payload-Encoding: GB18030" in (bag / "bag-info.txt").read_text(encoding="utf-8")


def test_exchange_pseudonyms_are_per_receiver_stable_and_linkable_within_a_receiver(settings, tmp_path):
    police = build_package(settings, "person_events", MONTH, "police", {"events": person_event_rows(True)},
                           tmp_path, as_of=AS_OF_MONTH)
    proc = build_package(settings, "person_events", MONTH, "procuratorate",
                         {"events": [{k: v for k, v in r.items() if k != "name"} for r in person_event_rows(True)]},
                         tmp_path, as_of=AS_OF_MONTH)
    incidents = build_package(settings, "incident_report", MONTH, "police", incident_tables(), tmp_path,
                              as_of=AS_OF_MONTH)
    key = settings.secret("exchange_pseudonym_key")

    def xids(bag, path, col):
        lines = (bag / path).read_bytes().decode("gb18030").splitlines()
        i = lines[0].split(",").index(col)
        return [ln.split(",")[i] for ln in lines[1:]]

    police_ids = xids(police, "data/events.csv", "person_xid")
    assert police_ids[0] == exchange_pseudonym(key, "police", "person_xid", "pk-a")
    assert not set(police_ids) & set(xids(proc, "data/events.csv", "person_xid"))   # unlinkable between receivers
    assert set(xids(incidents, "data/persons.csv", "person_xid")) <= set(police_ids)  # linkable for one receiver
    assert all("pk-" not in x for x in police_ids)


def test_sm2_rebuild_elsewhere_differs_only_in_the_randomised_signature(settings, tmp_path):
    a = build_package(settings, "population_daily", DAY, "moj", population_tables(), tmp_path / "a", as_of=AS_OF_DAY)
    b = build_package(settings, "population_daily", DAY, "moj", population_tables(), tmp_path / "b", as_of=AS_OF_DAY)
    fa, fb = bag_files(a), bag_files(b)
    sig = "tagmanifest-sm3.txt.sig"
    assert {k: v for k, v in fa.items() if k != sig} == {k: v for k, v in fb.items() if k != sig}
    assert fa[sig] != fb[sig]  # a fresh random K each time ...
    assert verify_bag(a, _pub(settings)).ok and verify_bag(b, _pub(settings)).ok  # ... and both verify


def test_ed25519_package_and_zip_are_byte_identical_on_rebuild(settings, tmp_path):
    kw = dict(as_of=AS_OF_MONTH, signature="ed25519", archive=True)
    a = build_package(settings, "incident_report", MONTH, "court", incident_tables(), tmp_path / "a", **kw)
    b = build_package(settings, "incident_report", MONTH, "court", incident_tables(), tmp_path / "b", **kw)
    assert bag_files(a) == bag_files(b)
    za, zb = a.with_name(a.name + ".zip"), b.with_name(b.name + ".zip")
    assert za.read_bytes() == zb.read_bytes()
    with zipfile.ZipFile(za) as zf:
        names = zf.namelist()
        assert names == sorted(names) and all(n.startswith(a.name + "/") for n in names)
        assert {i.date_time for i in zf.infolist()} == {(2026, 11, 6, 0, 0, 0)}  # Generated-At, not the clock
    assert "Signature-Algorithm: Ed25519" in (a / "bag-info.txt").read_text()
    assert (a / "tagmanifest-sha256.txt.sig").exists() and not (a / "tagmanifest-sm3.txt.sig").exists()
    assert verify_bag(za, _pub(settings, "ed25519")).ok


def test_rerun_replaces_in_place_and_is_byte_identical(settings, tmp_path):
    out = tmp_path / "out"
    first = build_package(settings, "population_daily", DAY, "moj", population_tables(), out, as_of=AS_OF_DAY,
                          archive=True)
    before = bag_files(first)
    zip_before = first.with_name(first.name + ".zip").read_bytes()
    again = build_package(settings, "population_daily", DAY, "moj", population_tables(), out, as_of=AS_OF_DAY,
                          archive=True)
    assert again == first and bag_files(again) == before  # the valid signature in place is kept
    assert first.with_name(first.name + ".zip").read_bytes() == zip_before
    assert sorted(p.name for p in out.iterdir()) == [first.name, first.name + ".zip"]  # no duplicate, no temp
    changed = population_tables()
    changed["movements"][0]["admissions"] = 7
    build_package(settings, "population_daily", DAY, "moj", changed, out, as_of=AS_OF_DAY)
    assert "2026-11-19,BJ02,7,1,2" in (first / "data/movements.csv").read_text()
    assert sorted(p.name for p in out.iterdir()) == [first.name, first.name + ".zip"]
    assert verify_bag(first, _pub(settings)).ok


def test_a_killed_build_leaves_nothing_under_the_final_name_and_is_cleaned_up(settings, tmp_path):
    out = tmp_path / "out"
    bad = population_tables()
    bad["population"][0]["population"] = "many"
    with pytest.raises(BuildRefused):
        build_package(settings, "population_daily", DAY, "moj", bad, out, as_of=AS_OF_DAY)
    assert not out.exists() or not any(out.iterdir())
    (out / ".population_daily_2026-11-19_moj.tmp-dead").mkdir(parents=True)  # as a killed run leaves it
    build_package(settings, "population_daily", DAY, "moj", population_tables(), out, as_of=AS_OF_DAY)
    assert [p.name for p in out.iterdir()] == ["population_daily_2026-11-19_moj"]


def test_period_with_no_data_is_refused(settings, tmp_path):
    with pytest.raises(BuildRefused, match="has no data"):
        build_package(settings, "population_daily", DAY, "moj", {"population": [], "movements": []}, tmp_path,
                      as_of=AS_OF_DAY)
    with pytest.raises(BuildRefused, match=r"data/population.csv has no rows.*required"):
        build_package(settings, "population_daily", DAY, "moj",
                      {"population": [], "movements": population_tables()["movements"]}, tmp_path, as_of=AS_OF_DAY)
    assert not any(tmp_path.glob("population_daily*"))
    # a file that may be empty (no person involved) is written with its header only
    tabs = incident_tables()
    tabs["persons"] = []
    bag = build_package(settings, "incident_report", MONTH, "court", tabs, tmp_path, as_of=AS_OF_MONTH)
    assert (bag / "data/persons.csv").read_bytes().count(b"\r\n") == 1
    assert "Record-Count: data/persons.csv 0" in (bag / "bag-info.txt").read_text()


def test_open_period_is_refused_unless_provisional_and_then_marked(settings, tmp_path):
    with pytest.raises(BuildRefused, match=r"still open.*provisional"):
        build_package(settings, "kpi_monthly", MONTH, "moj", kpi_tables(), tmp_path, as_of=date(2026, 11, 4))
    with pytest.raises(BuildRefused, match="still open"):
        build_package(settings, "population_daily", DAY, "moj", population_tables(), tmp_path,
                      as_of=date(2026, 11, 18))
    # closes 5 days after the month: as of 5 November it is final
    build_package(settings, "kpi_monthly", MONTH, "moj", kpi_tables(), tmp_path / "final", as_of=date(2026, 11, 5))
    bag = build_package(settings, "kpi_monthly", MONTH, "moj", kpi_tables(), tmp_path, as_of=date(2026, 11, 4),
                        provisional=True)
    info = (bag / "bag-info.txt").read_text().splitlines()
    assert "Exchange-Period-Status: provisional" in info and "Data-As-Of: 2026-11-04" in info
    assert "Generated-At: 2026-11-05T00:00:00+08:00" in info
    report = verify_bag(bag, _pub(settings))
    assert report.ok and report.info["status"] == "provisional"


def test_rows_outside_the_period_bad_codes_and_duplicate_keys_are_refused(settings, tmp_path):
    tabs = population_tables()
    tabs["population"][0]["census_date"] = date(2026, 11, 18)
    with pytest.raises(BuildRefused, match=r"row 1: census_date 2026-11-18 is outside the period 2026-11-19"):
        build_package(settings, "population_daily", DAY, "moj", tabs, tmp_path, as_of=AS_OF_DAY)
    tabs = population_tables()
    tabs["movements"][1]["centre"] = "XX99"
    with pytest.raises(BuildRefused, match=r"(?s)data/movements.csv.*row 2, column centre: 'XX99' is not a code of centre"):
        build_package(settings, "population_daily", DAY, "moj", tabs, tmp_path, as_of=AS_OF_DAY)
    tabs = population_tables()
    tabs["movements"][1]["centre"] = "BJ02"
    with pytest.raises(BuildRefused, match="rows 1 and 2 share the key"):
        build_package(settings, "population_daily", DAY, "moj", tabs, tmp_path, as_of=AS_OF_DAY)
    tabs = population_tables()
    tabs["movements"][0]["extra"] = 1
    with pytest.raises(BuildRefused, match="column 'extra' is not in the schema"):
        build_package(settings, "population_daily", DAY, "moj", tabs, tmp_path, as_of=AS_OF_DAY)
    with pytest.raises(BuildRefused, match="does not receive package 'incident_report'"):
        build_package(settings, "incident_report", MONTH, "moj", incident_tables(), tmp_path, as_of=AS_OF_MONTH)


def test_receiver_not_authorised_for_an_identifier_is_refused(settings, tmp_path):
    with pytest.raises(BuildRefused, match=r"'moj'.*not authorised.*person_events\.events\.id_number"):
        build_package(settings, "person_events", MONTH, "moj", {"events": person_event_rows(with_identifiers=True)},
                      tmp_path, as_of=AS_OF_MONTH)
    # the procuratorate may get the ID number but not the name
    with pytest.raises(BuildRefused, match=r"'procuratorate'.*person_events\.events\.name"):
        build_package(settings, "person_events", MONTH, "procuratorate",
                      {"events": person_event_rows(with_identifiers=True)}, tmp_path, as_of=AS_OF_MONTH)
    # an authorised receiver must be given the field
    with pytest.raises(BuildRefused, match="column 'id_number' is missing"):
        build_package(settings, "person_events", MONTH, "police", {"events": person_event_rows()}, tmp_path,
                      as_of=AS_OF_MONTH)
    assert not any(tmp_path.glob("person_events*"))


# 18 characters shaped like an ID number that are not part of a longer run of hex digits (a pseudonym may
# hold 18 decimal digits in a row) and carry a valid GB 11643 check character.
ID_LIKE = re.compile(rb"(?<![0-9a-fA-F])\d{17}[\dX](?![0-9a-fA-F])")


def _has_id_number(blob: bytes) -> bool:
    return any(citizen_id.check(m.group().decode()).ok for m in ID_LIKE.finditer(blob))


def test_independent_scan_finds_identifiers_only_where_authorised(settings, tmp_path):
    """Scan every byte of every built package for the people's ID numbers and names (in both encodings) and for
    anything shaped like an ID number, without asking the spec which columns should hold them."""
    built = {
        ("person_events", "moj"): {"events": person_event_rows()},
        ("person_events", "police"): {"events": person_event_rows(True)},
        ("incident_report", "police"): incident_tables(),
        ("incident_report", "court"): incident_tables(),
    }
    found = {}
    for (package, receiver), tabs in built.items():
        bag = build_package(settings, package, MONTH, receiver, tabs, tmp_path, as_of=AS_OF_MONTH)
        blob = b"".join(bag_files(bag).values())
        names = any(n.encode(enc) in blob for n, _ in PEOPLE.values() for enc in ("utf-8", "gb18030"))
        found[(package, receiver)] = (_has_id_number(blob), names)
    assert found[("person_events", "moj")] == (False, False)
    assert found[("person_events", "police")] == (True, True)
    assert found[("incident_report", "court")] == (True, True)


def test_generation_time_is_explicit_or_derived_from_the_period(settings, tmp_path):
    at = datetime(2026, 11, 21, 3, 0, tzinfo=timezone(timedelta(hours=8)))
    bag = build_package(settings, "population_daily", DAY, "moj", population_tables(), tmp_path, as_of=AS_OF_DAY,
                        generated_at=at)
    assert "Generated-At: 2026-11-21T03:00:00+08:00" in (bag / "bag-info.txt").read_text()
    with pytest.raises(BuildRefused, match="time zone"):
        build_package(settings, "population_daily", DAY, "moj", population_tables(), tmp_path, as_of=AS_OF_DAY,
                      generated_at=datetime(2026, 11, 21))


def test_signing_keys_are_generated_once_into_var_secrets(tmp_path):
    settings = make_settings(tmp_path)
    secrets_dir = settings.secrets_dir
    assert not secrets_dir.exists()
    first = crypto.signing_key(settings, "sm2").public
    path = secrets_dir / "exchange_sm2_private_key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert crypto.signing_key(settings, "sm2").public == first  # stable across calls
    other = make_settings(tmp_path / "elsewhere")
    assert crypto.signing_key(other, "sm2").public != first  # a new var dir, a new key
    env = make_settings(tmp_path / "env", secret_source="env")
    with pytest.raises(RuntimeError, match="SMARTREHAB_SECRET_EXCHANGE_SM2_PRIVATE_KEY"):
        crypto.signing_key(env, "sm2")


def test_write_zip_names_the_bag_folder(settings, tmp_path):
    bag = build_package(settings, "population_daily", DAY, "moj", population_tables(), tmp_path, as_of=AS_OF_DAY)
    z = write_zip(bag)
    with zipfile.ZipFile(z) as zf:
        assert zf.read(f"{bag.name}/data/movements.csv") == (bag / "data/movements.csv").read_bytes()


def test_an_id_number_breaking_gb11643_is_refused_and_a_15_digit_one_sent_in_18_digits(settings, tmp_path):
    rows = person_event_rows(True)
    bad = [dict(r, id_number="110105199001011234") if i == 0 else r for i, r in enumerate(rows)]
    with pytest.raises(BuildRefused, match="id_checksum"):
        build_package(settings, "person_events", MONTH, "police", {"events": bad}, tmp_path, as_of=AS_OF_MONTH)
    old = [dict(r, id_number="110105491231002") if i == 0 else r for i, r in enumerate(rows)]
    bag = build_package(settings, "person_events", MONTH, "police", {"events": old}, tmp_path, as_of=AS_OF_MONTH)
    blob = b"".join(bag_files(bag).values())
    assert b"11010519491231002X" in blob and b"110105491231002," not in blob
