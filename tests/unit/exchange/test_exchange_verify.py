"""The receivers' verifier: a valid package passes; every alteration and every schema breach is reported by file
and rule; the command line's exit status and messages."""

from __future__ import annotations

import shutil
import zipfile

import pytest
from exchange_support import (
    AS_OF_DAY,
    AS_OF_MONTH,
    DAY,
    MONTH,
    incident_tables,
    make_settings,
    person_event_rows,
    population_tables,
    reseal,
)

from smartrehab.exchange import crypto
from smartrehab.exchange.bag import build_package, write_zip
from smartrehab.exchange.verify import main, verify_bag


@pytest.fixture
def bag(settings, tmp_path):
    return build_package(settings, "population_daily", DAY, "moj", population_tables(), tmp_path / "out",
                         as_of=AS_OF_DAY)


@pytest.fixture
def pub(settings):
    return crypto.signing_key(settings, "sm2").public


def _rules(report) -> set[tuple[str, str]]:
    return report.rules()


def test_valid_bag_and_its_zip_verify(bag, pub):
    assert verify_bag(bag, pub).ok
    report = verify_bag(write_zip(bag), pub)
    assert report.ok, report.text()
    assert report.info == {"package": "population_daily", "period": DAY, "receiver": "moj", "status": "final",
                           "rows": "10"}


def test_one_byte_changed_in_a_data_file_breaks_both_payload_manifests(bag, pub):
    p = bag / "data/population.csv"
    raw = bytearray(p.read_bytes())
    raw[-3] = ord("9") if raw[-3] != ord("9") else ord("8")
    p.write_bytes(bytes(raw))
    report = verify_bag(bag, pub)
    assert {("data/population.csv", "manifest-sha256.digest"), ("data/population.csv", "manifest-sm3.digest")} \
        <= _rules(report)
    assert not report.ok


def test_a_removed_data_file_is_reported_missing(bag, pub):
    (bag / "data/movements.csv").unlink()
    rules = _rules(verify_bag(bag, pub))
    assert ("data/movements.csv", "manifest-sha256.missing-file") in rules
    assert ("data/movements.csv", "manifest-sm3.missing-file") in rules
    assert ("data/movements.csv", "schema.file") in rules


def test_an_added_file_is_reported_in_data_and_at_the_top(bag, pub):
    (bag / "data/extra.csv").write_text("a\r\n1\r\n")
    (bag / "notes.txt").write_text("hello")
    rules = _rules(verify_bag(bag, pub))
    assert {("data/extra.csv", "manifest-sha256.unlisted-file"), ("data/extra.csv", "manifest-sm3.unlisted-file"),
            ("data/extra.csv", "schema.file"), ("notes.txt", "bag.unexpected-file")} <= rules
    assert ("bag-info.txt", "bag-info.payload-oxum") in rules


def test_bag_info_changed_breaks_the_tag_manifests(bag, pub):
    p = bag / "bag-info.txt"
    p.write_text(p.read_text().replace("Record-Count: data/movements.csv 2", "Record-Count: data/movements.csv 3"))
    rules = _rules(verify_bag(bag, pub))
    assert {("bag-info.txt", "tagmanifest-sha256.digest"), ("bag-info.txt", "tagmanifest-sm3.digest"),
            ("data/movements.csv", "bag-info.record-count")} <= rules
    assert ("tagmanifest-sm3.txt.sig", "signature.invalid") not in rules  # the tag manifest itself is intact


def test_bag_info_changed_with_recomputed_tag_manifests_breaks_the_signature(bag, pub):
    """An attacker who also rewrites the manifests cannot sign them with the sender's key."""
    old_sig = (bag / "tagmanifest-sm3.txt.sig").read_bytes()
    p = bag / "bag-info.txt"
    p.write_text(p.read_text().replace("Exchange-Period-Status: final", "Exchange-Period-Status: provisional"))
    attacker = make_settings(bag.parent.parent / "attacker")
    reseal(bag, attacker)
    report = verify_bag(bag, pub)
    assert _rules(report) == {("tagmanifest-sm3.txt.sig", "signature.invalid")}
    (bag / "tagmanifest-sm3.txt.sig").write_bytes(old_sig)  # the sender's old signature does not fit either
    assert _rules(verify_bag(bag, pub)) == {("tagmanifest-sm3.txt.sig", "signature.invalid")}


def test_wrong_public_key_and_wrong_algorithm_are_reported(settings, bag, tmp_path):
    other = crypto.signing_key(make_settings(tmp_path / "other"), "sm2").public
    report = verify_bag(bag, other)
    assert _rules(report) == {("tagmanifest-sm3.txt.sig", "signature.invalid")}
    assert "does not verify with the public key" in report.text()
    assert [f.rule for f in report.notices] == ["signature.fingerprint"]  # says which key signed it
    ed = crypto.signing_key(settings, "ed25519").public
    assert ("tagmanifest-sm3.txt.sig", "signature.key-algorithm") in _rules(verify_bag(bag, ed))


def test_signer_id_is_part_of_the_signature(settings, tmp_path, pub):
    bag = build_package(settings, "population_daily", DAY, "moj", population_tables(), tmp_path, as_of=AS_OF_DAY,
                        signer_id="SMARTREHAB@BUREAU")
    assert "Signer-ID: SMARTREHAB@BUREAU" in (bag / "bag-info.txt").read_text()
    assert verify_bag(bag, pub).ok
    # claim the default ID instead (and fix the manifests): the signature no longer fits
    p = bag / "bag-info.txt"
    p.write_text(p.read_text().replace("Signer-ID: SMARTREHAB@BUREAU", "Signer-ID: 1234567812345678"))
    sig = (bag / "tagmanifest-sm3.txt.sig").read_bytes()
    reseal(bag, settings)
    (bag / "tagmanifest-sm3.txt.sig").write_bytes(sig)
    assert ("tagmanifest-sm3.txt.sig", "signature.invalid") in _rules(verify_bag(bag, pub))


def test_a_removed_signature_or_tag_manifest_is_reported(bag, pub, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(bag, copy)
    (bag / "tagmanifest-sm3.txt.sig").unlink()
    assert ("tagmanifest-sm3.txt.sig", "signature.missing") in _rules(verify_bag(bag, pub))
    (copy / "tagmanifest-sha256.txt").unlink()
    assert ("tagmanifest-sha256.txt", "tagmanifest.missing") in _rules(verify_bag(copy, pub))


def test_schema_breaches_are_caught_even_in_a_correctly_sealed_bag(settings, tmp_path, pub):
    """A sender bug sealed and signed: manifests and signature pass, the content rules do not."""
    def fresh(name):
        return build_package(settings, "population_daily", DAY, "moj", population_tables(), tmp_path / name,
                             as_of=AS_OF_DAY)

    cases = {
        "type": (lambda t: t.replace("2026-11-19,BJ01,3,0,1", "2026-11-19,BJ01,three,0,1"),
                 ("data/movements.csv", "type.integer")),
        "code": (lambda t: t.replace("2026-11-19,BJ02,0,1,2", "2026-11-19,XX99,0,1,2"),
                 ("data/movements.csv", "type.code")),
        "header": (lambda t: t.replace("admissions,transfers", "transfers,admissions"),
                   ("data/movements.csv", "schema.header")),
        "count": (lambda t: t.replace("\r\n2026-11-19,BJ02,0,1,2", "\r\n2026-11-19,BJ02,0,1,2,9"),
                  ("data/movements.csv", "schema.column-count")),
        "order": (lambda t: "movement_date,centre,admissions,transfers,releases\r\n2026-11-19,BJ02,0,1,2\r\n"
                            "2026-11-19,BJ01,3,0,1\r\n", ("data/movements.csv", "key.order")),
        "period": (lambda t: t.replace("2026-11-19,BJ02", "2026-11-18,BJ02"), ("data/movements.csv", "period")),
        "rows": (lambda t: t + "2026-11-19,BJ03,0,0,0\r\n", ("data/movements.csv", "bag-info.record-count")),
        "crlf": (lambda t: t.replace("\r\n", "\n"), ("data/movements.csv", "csv.line-end")),
        "bom": (lambda t: "\ufeff" + t, ("data/movements.csv", "encoding")),
    }
    for name, (change, rule) in cases.items():
        bag = fresh(name)
        p = bag / "data/movements.csv"
        p.write_bytes(change(p.read_bytes().decode("utf-8")).encode("utf-8"))
        reseal(bag, settings)
        report = verify_bag(bag, pub)
        assert rule in _rules(report), (name, report.text())
        assert not any(f.rule.startswith(("manifest", "tagmanifest", "signature")) for f in report.findings), name


def test_encoding_must_match_the_receiver(settings, tmp_path, pub):
    bag = build_package(settings, "person_events", MONTH, "police", {"events": person_event_rows(True)}, tmp_path,
                        as_of=AS_OF_MONTH)
    p = bag / "bag-info.txt"
    p.write_text(p.read_text().replace("Payload-Encoding: GB18030", "Payload-Encoding: UTF-8"))
    reseal(bag, settings)
    assert ("bag-info.txt", "bag-info.encoding") in _rules(verify_bag(bag, pub))
    bad = tmp_path / "bad"
    bag = build_package(settings, "person_events", MONTH, "police", {"events": person_event_rows(True)}, bad,
                        as_of=AS_OF_MONTH)
    e = bag / "data/events.csv"
    e.write_bytes(e.read_bytes() + b"\xff\xff\r\n")  # not GB18030
    reseal(bag, settings)
    assert ("data/events.csv", "encoding") in _rules(verify_bag(bag, pub))


def test_unauthorised_identifier_column_is_a_privacy_failure(settings, tmp_path, pub):
    """A package for the ministry that somehow carries ID numbers is reported as a privacy breach."""
    bag = build_package(settings, "person_events", MONTH, "moj", {"events": person_event_rows()}, tmp_path,
                        as_of=AS_OF_MONTH)
    p = bag / "data/events.csv"
    lines = p.read_bytes().decode().split("\r\n")
    lines = [lines[0] + ",id_number"] + [ln + ",110105199001011232" for ln in lines[1:-1]] + [""]
    p.write_text("\r\n".join(lines), newline="")
    reseal(bag, settings)
    report = verify_bag(bag, pub)
    assert ("data/events.csv", "privacy") in _rules(report)
    assert "not authorised" in report.text()


def test_newer_minor_schema_is_read_by_an_older_spec_and_a_newer_major_is_refused(settings, tmp_path, pub):
    bag = build_package(settings, "population_daily", DAY, "moj", population_tables(), tmp_path, as_of=AS_OF_DAY)
    p = bag / "data/movements.csv"
    lines = p.read_bytes().decode().split("\r\n")
    lines = [lines[0] + ",deaths"] + [ln + ",0" for ln in lines[1:-1]] + [""]
    p.write_text("\r\n".join(lines), newline="")
    info = bag / "bag-info.txt"
    info.write_text(info.read_text().replace("Exchange-Schema-Version: 1.0", "Exchange-Schema-Version: 1.1"))
    reseal(bag, settings)
    report = verify_bag(bag, pub)
    assert report.ok, report.text()
    assert {f.rule for f in report.notices} >= {"schema.newer"}
    info.write_text(info.read_text().replace("Exchange-Schema-Version: 1.1", "Exchange-Schema-Version: 2.0"))
    reseal(bag, settings)
    assert ("bag-info.txt", "schema.version") in _rules(verify_bag(bag, pub))


def test_zip_with_unsafe_names_is_unreadable(tmp_path, pub):
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("bag/../../etc/passwd", "x")
    from smartrehab.exchange.verify import Unreadable

    with pytest.raises(Unreadable, match="unsafe"):
        verify_bag(z, pub)


def test_cli_exit_status_and_messages(settings, bag, tmp_path, capsys):
    key = tmp_path / "sender-sm2.pem"
    key.write_text(crypto.signing_key(settings, "sm2").public.to_pem())
    assert main([str(bag), "--public-key", str(key)]) == 0
    assert capsys.readouterr().out.startswith("VALID population_daily_2026-11-19_moj")
    (bag / "data/movements.csv").write_bytes(b"tampered\r\n")
    assert main([str(bag), "--public-key", str(key)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("INVALID population_daily_2026-11-19_moj")
    assert "FAIL data/movements.csv: [manifest-sm3.digest]" in out
    assert main([str(tmp_path / "nothing"), "--public-key", str(key)]) == 2
    assert "neither a bag folder nor a zip" in capsys.readouterr().err
    key.write_text("not a key")
    assert main([str(bag), "--public-key", str(key)]) == 2


def test_incident_report_for_the_court_verifies_with_the_spec_file_alone(settings, tmp_path):
    """The receiver's side: a copy of the spec folder (packages.yaml + codes.csv) and the public key PEM."""
    from smartrehab.exchange.spec import CODES_FILE, SPEC_FILE

    spec_dir = tmp_path / "receiver-spec"
    spec_dir.mkdir()
    shutil.copy(SPEC_FILE, spec_dir / "packages.yaml")
    shutil.copy(CODES_FILE, spec_dir / "codes.csv")
    bag = build_package(settings, "incident_report", MONTH, "court", incident_tables(), tmp_path / "out",
                        as_of=AS_OF_MONTH, archive=True)
    key = tmp_path / "k.pem"
    key.write_text(crypto.signing_key(settings, "sm2").public.to_pem())
    assert main([str(bag.with_name(bag.name + ".zip")), "--public-key", str(key),
                 "--spec", str(spec_dir / "packages.yaml")]) == 0
