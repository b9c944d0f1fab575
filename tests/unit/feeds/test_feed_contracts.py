"""Event contracts: they load, their examples pass, every quarantine reason is produced, Spark schemas, upgrades."""

from __future__ import annotations

import copy
import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from smartrehab.feeds import contracts as c
from smartrehab.feeds.contracts import CST, MAX_MESSAGE_BYTES, REASON_CODES, ContractError, check_event, load_contracts
from smartrehab.feeds.simulator import FEEDS
from smartrehab.settings import get_settings

REG = load_contracts()
LATER = datetime(2030, 1, 1, tzinfo=CST)
VERSIONS = [(f, v) for f in REG.feed_names() for v in REG.contract(f).versions]


def example(feed: str, version: str | None = None) -> dict:
    return copy.deepcopy(REG.version(feed, version).example)


def check(event: object, received: datetime = LATER) -> str | None:
    raw = event if isinstance(event, (str, bytes)) else json.dumps(event)
    return check_event(raw, received)[1]


def test_every_simulated_feed_has_a_contract_and_no_more():
    assert REG.feed_names() == sorted(FEEDS)
    assert len(FEEDS) == 9


@pytest.mark.parametrize("feed", ["vitals", "access"])
def test_vitals_and_access_have_a_documented_breaking_2_0(feed):
    contract = REG.contract(feed)
    assert sorted(contract.versions) == ["1.0", "2.0"]
    assert contract.latest == "2.0"
    assert contract.versions["2.0"].changes and contract.versions["2.0"].status == "current"
    old = {f.name for f in contract.versions["1.0"].payload}
    new = {f.name for f in contract.versions["2.0"].payload}
    assert old - new and new - old  # something renamed / split, something added


def test_vitals_2_0_adds_spo2_and_renames_temperature():
    v1 = {f.name for f in REG.version("vitals", "1.0").payload}
    v2 = {f.name: f for f in REG.version("vitals", "2.0").payload}
    assert "spo2_pct" in v2 and "spo2_pct" not in v1
    assert "temperature" in v1 and "temperature" not in v2
    assert v2["body_temp_c"].upgrade_from.field == "temperature"
    assert (v2["spo2_pct"].minimum, v2["spo2_pct"].maximum, v2["spo2_pct"].unit) == (50, 100, "%")


@pytest.mark.parametrize(("feed", "version"), VERSIONS)
def test_each_example_passes_its_own_version(feed, version):
    ex = example(feed, version)
    event, reason = check_event(json.dumps(ex).encode(), LATER)
    assert reason is None
    assert event == ex


@pytest.mark.parametrize(("feed", "version"), VERSIONS)
def test_every_payload_field_is_typed_and_documented_when_numeric(feed, version):
    for f in REG.version(feed, version).payload:
        assert f.type in c.FIELD_TYPES
        if f.type in ("int", "double"):
            assert f.minimum is not None and f.maximum is not None, f"{feed}.{f.name} has no allowed range"


def test_a_version_is_checked_against_its_own_schema():
    ex = example("vitals", "2.0")
    ex["contract_version"] = "1.0"  # 2.0 payload claiming 1.0
    assert check(ex) == "schema_violation:payload.temperature"
    ex = example("access", "1.0")
    ex["contract_version"] = "2.0"
    assert check(ex) == "schema_violation:payload.holder_type"


def _bad(mutate) -> dict:
    ex = example("vitals", "2.0")
    mutate(ex)
    return ex


SCHEMA_CASES = {
    "event_id not a uuid": (_bad(lambda e: e.update(event_id="12345")), "schema_violation:event_id"),
    "event_id upper-case uuid": (_bad(lambda e: e.update(event_id=e["event_id"].upper())), "schema_violation:event_id"),
    "unknown centre": (_bad(lambda e: e["location"].update(centre="XX99")), "schema_violation:location.centre"),
    "zone 00 excluded": (_bad(lambda e: e["location"].update(zone="00")), "schema_violation:location.zone"),
    "missing location.room": (_bad(lambda e: e["location"].pop("room")), "schema_violation:location.room"),
    "person required": (_bad(lambda e: e.update(person_pk=None)), "schema_violation:person_pk"),
    "person not a pseudonym": (_bad(lambda e: e.update(person_pk="110101199001011234")), "schema_violation:person_pk"),
    "heart rate too high": (_bad(lambda e: e["payload"].update(heart_rate=251)), "schema_violation:payload.heart_rate"),
    "heart rate a string": (_bad(lambda e: e["payload"].update(heart_rate="72")), "schema_violation:payload.heart_rate"),
    "heart rate a boolean": (_bad(lambda e: e["payload"].update(heart_rate=True)), "schema_violation:payload.heart_rate"),
    "heart rate fractional": (_bad(lambda e: e["payload"].update(heart_rate=72.5)), "schema_violation:payload.heart_rate"),
    "spo2 above 100": (_bad(lambda e: e["payload"].update(spo2_pct=101)), "schema_violation:payload.spo2_pct"),
    "worn not nullable": (_bad(lambda e: e["payload"].update(worn=None)), "schema_violation:payload.worn"),
    "missing payload field": (_bad(lambda e: e["payload"].pop("battery_pct")), "schema_violation:payload.battery_pct"),
    "extra payload field": (_bad(lambda e: e["payload"].update(mood="ok")), "schema_violation:payload.mood"),
    "extra top-level field": (_bad(lambda e: e.update(colour="red")), "schema_violation:colour"),
    "missing payload": (_bad(lambda e: e.pop("payload")), "schema_violation:payload"),
    "payload not an object": (_bad(lambda e: e.update(payload=[1])), "schema_violation:payload"),
    "no offset": (_bad(lambda e: e.update(event_time="2026-11-28T10:05:03")), "schema_violation:event_time"),
    "UTC offset": (_bad(lambda e: e.update(event_time="2026-11-28T02:05:03Z")), "schema_violation:event_time"),
    "impossible date": (_bad(lambda e: e.update(event_time="2026-02-30T10:05:03+08:00")), "schema_violation:event_time"),
    "bad device id": (_bad(lambda e: e.update(device_id="wristband 7")), "schema_violation:device_id"),
    "pseudonym with trailing newline": (_bad(lambda e: e.update(person_pk=e["person_pk"] + "\n")),
                                        "schema_violation:person_pk"),
}
#: Cases where the compiled checker is deliberately stricter than plain JSON Schema.
STRICTER_THAN_JSON_SCHEMA = {"pseudonym with trailing newline"}


@pytest.mark.parametrize("case", sorted(SCHEMA_CASES))
def test_schema_violations_name_the_field(case):
    event, expected = SCHEMA_CASES[case]
    assert check(event) == expected


def test_schema_violations_in_other_feeds():
    ev = example("perimeter")
    ev["person_pk"] = "a" * 64  # perimeter events concern no person
    assert check(ev) == "schema_violation:person_pk"
    ev = example("behaviour_score")
    ev["payload"]["score_date"] = "2026-13-01"
    assert check(ev) == "schema_violation:payload.score_date"
    ev = example("access", "2.0")
    ev["payload"]["direction"] = "sideways"
    assert check(ev) == "schema_violation:payload.direction"
    ev = example("patrol")
    ev["payload"]["planned_time"] = "2026-11-28T25:00:00+08:00"
    assert check(ev) == "schema_violation:payload.planned_time"
    ev = example("access", "2.0")
    ev["person_pk"] = None  # optional for access
    assert check(ev) is None


def test_centre_codes_come_from_the_code_table():
    codes = (get_settings().catalog_dir / "code_tables" / "centre.csv").read_text().splitlines()[1:]
    last = codes[-1].split(",")[0]
    ev = example("alarm")
    ev["location"]["centre"] = last
    assert check(ev) is None
    ev["location"]["centre"] = last[:2] + f"{int(last[2:]) + 1:02d}"
    assert check(ev) == "schema_violation:location.centre"


def _valid_line() -> str:
    return json.dumps(example("vitals", "2.0"))


REASON_CASES = {
    "oversize bytes": (b'{"pad":"' + b"x" * MAX_MESSAGE_BYTES + b'"}', "oversize"),
    "oversize str": ('{"pad":"' + "x" * MAX_MESSAGE_BYTES + '"}', "oversize"),
    "oversize multibyte str": ('{"pad":"' + "戒" * (MAX_MESSAGE_BYTES // 3 + 1) + '"}', "oversize"),
    "oversize garbage is oversize first": (b"\xff" * (MAX_MESSAGE_BYTES + 1), "oversize"),
    "exactly 1 MiB is not oversize": (b" " * (MAX_MESSAGE_BYTES - 2) + b"{}", "missing_event_id"),
    "truncated": (_valid_line()[:-7], "invalid_json"),
    "python repr": (repr(example("vitals", "2.0")), "invalid_json"),
    "not utf-8": (_valid_line().encode()[:-1] + b',"x":"\xb4\xed"}', "invalid_json"),
    "NaN": (_valid_line().replace('"heart_rate": 97', '"heart_rate": NaN'), "invalid_json"),
    "overflowing number": (_valid_line().replace('"pos_x_m": 40.5', '"pos_x_m": 1e999'), "invalid_json"),
    "empty": (b"", "invalid_json"),
    "array": ("[" + _valid_line() + "]", "not_an_object"),
    "number": ("42", "not_an_object"),
    "null": ("null", "not_an_object"),
    "no event_id": (json.dumps({k: v for k, v in example("vitals", "2.0").items() if k != "event_id"}),
                    "missing_event_id"),
    "null event_id": (json.dumps({**example("vitals", "2.0"), "event_id": None}), "missing_event_id"),
    "empty event_id": (json.dumps({**example("vitals", "2.0"), "event_id": ""}), "missing_event_id"),
    "unknown feed": (json.dumps({**example("vitals", "2.0"), "feed": "cctv_raw"}), "unknown_feed"),
    "no feed": (json.dumps({k: v for k, v in example("vitals", "2.0").items() if k != "feed"}), "unknown_feed"),
    "feed not a string": (json.dumps({**example("vitals", "2.0"), "feed": ["vitals"]}), "unknown_feed"),
    "unregistered minor": (json.dumps({**example("vitals", "2.0"), "contract_version": "2.1"}),
                           "unknown_contract_version"),
    "version as number": (json.dumps({**example("vitals", "2.0"), "contract_version": 2.0}),
                          "unknown_contract_version"),
    "no version": (json.dumps({k: v for k, v in example("vitals", "2.0").items() if k != "contract_version"}),
                   "unknown_contract_version"),
}


@pytest.mark.parametrize("case", sorted(REASON_CASES))
def test_each_quarantine_reason_from_a_crafted_message(case):
    raw, expected = REASON_CASES[case]
    assert check_event(raw, LATER) == (None, expected)


def test_future_timestamp_boundary_is_five_minutes():
    ex = example("vitals", "1.0")  # event_time 2026-11-28T02:15:41+08:00
    t = datetime.fromisoformat(ex["event_time"])
    line = json.dumps(ex)
    assert check_event(line, t - timedelta(minutes=5))[1] is None
    assert check_event(line, t - timedelta(minutes=5, seconds=1))[1] == "future_timestamp"
    # A naive receipt time is China Standard Time, not UTC.
    assert check_event(line, datetime(2026, 11, 28, 2, 10, 41))[1] is None
    assert check_event(line, datetime(2026, 11, 28, 2, 10, 40))[1] == "future_timestamp"
    # The same instant written in UTC is the same instant.
    assert check_event(line, datetime(2026, 11, 27, 18, 10, 40, tzinfo=CST.utc))[1] == "future_timestamp"


def test_reason_codes_are_the_documented_fixed_list():
    assert REASON_CODES == ("oversize", "invalid_json", "not_an_object", "missing_event_id", "unknown_feed",
                            "unknown_contract_version", "schema_violation", "future_timestamp")
    produced = {c.reason_kind(r) for _, r in REASON_CASES.values()} | {"schema_violation", "future_timestamp"}
    assert produced == set(REASON_CODES)
    readme = (Path(get_settings().repo_root) / "contracts" / "README.md").read_text(encoding="utf-8")
    for code in REASON_CODES:
        assert f"`{code}" in readme, f"{code} not documented in contracts/README.md"


def test_spark_fields_union_and_per_version():
    union = c.spark_fields("vitals")
    assert union["event_time"] == "timestamp"
    assert union["location.centre"] == "string"
    assert union["payload.spo2_pct"] == "int"
    assert union["payload.body_temp_c"] == "double"
    assert union["payload.temperature"] == "double"  # 1.0 only, still readable from the stream
    assert union["payload.worn"] == "boolean"
    v1 = c.spark_fields("vitals", "1.0")
    assert "payload.spo2_pct" not in v1 and "payload.temperature" in v1
    assert c.spark_fields("behaviour_score")["payload.score_date"] == "date"
    for feed in REG.feed_names():
        fields = c.spark_fields(feed)
        assert set(fields.values()) <= {"string", "int", "bigint", "double", "boolean", "timestamp", "date"}
        for version in REG.contract(feed).versions:
            names = {f.name for f in REG.version(feed, version).payload}
            assert {k for k in fields if k.startswith("payload.")} >= {f"payload.{n}" for n in names}


@pytest.mark.parametrize("feed", REG.feed_names())
def test_spark_ddl_matches_the_flattened_fields(feed):
    ddl = c.spark_ddl(feed)
    assert ddl.count("<") == ddl.count(">")
    payload = ddl[ddl.index("`payload` STRUCT<"):]
    for name, kind in c.spark_fields(feed).items():
        if name.startswith("payload."):
            assert f"`{name.split('.', 1)[1]}`: {kind.upper()}" in payload
        elif "." not in name:
            assert f"`{name}` {kind.upper()}" in ddl


def test_upgrade_vitals_1_0_to_2_0():
    old = example("vitals", "1.0")
    new = c.upgrade_event(old)
    assert list(new["payload"]) == [f.name for f in REG.version("vitals", "2.0").payload]
    assert new["payload"]["body_temp_c"] == old["payload"]["temperature"]
    assert new["payload"]["spo2_pct"] is None and new["payload"]["heart_rate"] == old["payload"]["heart_rate"]
    assert new["contract_version"] == "1.0"  # lineage kept
    assert old["payload"]["temperature"] == 36.4  # input untouched
    assert check({**new, "contract_version": "2.0"}) is None


def test_upgrade_access_splits_credential_type():
    old = example("access", "1.0")
    new = c.upgrade_event(old)["payload"]
    assert (new["holder_type"], new["auth_method"]) == ("detainee", "card")
    assert "credential_type" not in new
    old["payload"]["credential_type"] = "face"
    new = c.upgrade_event(old)["payload"]
    assert (new["holder_type"], new["auth_method"]) == ("unknown", "face")
    latest = example("access", "2.0")
    assert c.upgrade_event(latest) == latest


def _copy_contracts(tmp_path: Path) -> Path:
    dst = tmp_path / "contracts"
    shutil.copytree(Path(get_settings().repo_root) / "contracts", dst)
    return dst


@pytest.mark.parametrize(("old", "new", "message", "last"), [
    ('latest: "2.0"', 'latest: "1.0"', "not the highest", False),
    ('  "1.0":\n    status: deprecated', "  1.0:\n    status: deprecated", "quoted", False),
    ("      heart_rate:\n        type: int", "      heart_rate:\n        type: double", "changes type", True),
    ("upgrade_from: {field: temperature}", "upgrade_from: {field: temp}", "unknown field", False),
    ("feed: vitals", "feed: vital_signs", "file name", False),
    ("        min: 50\n        max: 100\n", "        min: 100\n        max: 50\n", "min > max", True),
])
def test_broken_contracts_are_refused(tmp_path, old, new, message, last):
    folder = _copy_contracts(tmp_path)
    path = folder / "vitals.yaml"
    text = path.read_text()
    assert old in text
    if last:  # change the 2.0 block only
        head, _, tail = text.rpartition(old)
        text = head + new + tail
    else:
        text = text.replace(old, new, 1)
    path.write_text(text)
    with pytest.raises(ContractError, match=message):
        load_contracts(folder, Path(get_settings().catalog_dir) / "code_tables")


def test_unquoted_yes_no_enum_is_refused(tmp_path):
    folder = _copy_contracts(tmp_path)
    path = folder / "access.yaml"
    path.write_text(path.read_text().replace("enum: [in, out]", "enum: [yes, no]", 1))
    with pytest.raises(ContractError, match="strings"):
        load_contracts(folder, Path(get_settings().catalog_dir) / "code_tables")


# ---- the compiled checker agrees with the JSON Schema ------------------------------------------------------


def _paths(obj: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in obj.items():
        out.append(prefix + k)
        if isinstance(v, dict):
            out += _paths(v, f"{prefix}{k}.")
    return out


def _set(obj: dict, path: str, value, delete: bool = False) -> dict:
    obj = copy.deepcopy(obj)
    *parents, last = path.split(".")
    target = obj
    for p in parents:
        target = target[p]
    if delete:
        del target[last]
    else:
        target[last] = value
    return obj


MUTATIONS = [None, "x", "", 10**6, -(10**6), True, 1.5, {}, [], "2026-11-28T10:05:03+08:00", "a" * 300]


@pytest.mark.parametrize(("feed", "version"), VERSIONS)
def test_compiled_checker_agrees_with_jsonschema(feed, version):
    ex = example(feed, version)
    ver = REG.version(feed, version)
    cases = [ex, {**ex, "unexpected": 1}, {**ex, "payload": {**ex["payload"], "unexpected": 1}}]
    for path in _paths(ex):
        if path in ("feed", "contract_version"):
            continue  # decided before the schema (unknown_feed / unknown_contract_version)
        cases.append(_set(ex, path, None, delete=True))
        cases += [_set(ex, path, value) for value in MUTATIONS]
    disagreements = []
    for event in cases:
        fast, reference = ver.checker(event), REG.schema_violation(event)
        if fast != reference:
            disagreements.append((fast, reference, event))
    assert not disagreements, disagreements[:3]
    assert len(cases) > 50


@pytest.mark.parametrize("case", sorted(SCHEMA_CASES))
def test_compiled_checker_agrees_on_crafted_cases(case):
    event, expected = SCHEMA_CASES[case]
    if case in STRICTER_THAN_JSON_SCHEMA:
        assert REG.schema_violation(event) is None
    else:
        assert f"schema_violation:{REG.schema_violation(event)}" == expected


def test_int_fields_refuse_integral_floats_unlike_plain_json_schema():
    ev = example("vitals", "2.0")
    ev["payload"]["heart_rate"] = 72.0
    assert REG.schema_violation(ev) is None  # JSON Schema: 72.0 is an integer
    assert check(ev) == "schema_violation:payload.heart_rate"  # Spark could not read it into an int column
