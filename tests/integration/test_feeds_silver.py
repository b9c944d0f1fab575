"""Feeds bronze -> silver -> hourly aggregates -> alerts on a tiny crafted event set, checked by hand.

One unit (BJ01 / D01, zone 03) between 10:00 and 11:00 on 2026-11-27, four people in a crafted SCD2 person
dimension (P1 changes version at 10:30, P3 is unknown, P4's first version starts later), doors, alarms and a
planned patrol round. A second delivery brings a late event (09:50) and one more denied door; a third run
with nothing new must change nothing.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import datetime

import pytest
from pyspark.sql import functions as F

from smartrehab.feeds.contracts import CST, check_event, load_contracts
from smartrehab.feeds.monitoring import load_thresholds
from spark_jobs.common.delta import row_hash, scd2_merge
from spark_jobs.feeds import hourly, quality, silver, stream

pytestmark = pytest.mark.spark

PERSON_TABLE = "silver.test_feeds_person"
TABLES = [stream.BRONZE, stream.QUARANTINE, silver.SILVER, silver.DIM_LOCATION, silver.DEVICES, silver.PATROL_PLAN,
          hourly.HOURLY, quality.ALERTS, PERSON_TABLE]
P1, P2, P3, P4 = (f"{n:064x}" for n in (0xA1, 0xA2, 0xA3, 0xA4))
UNIT = {"centre": "BJ01", "unit": "D01", "zone": "03"}


def at(hh: int, mm: int) -> datetime:
    return datetime(2026, 11, 27, hh, mm, tzinfo=CST)


def make(feed: str, time: datetime, device: str, room: str | None, person: str | None, **payload) -> dict:
    """A valid event of the feed's latest version, from its contract example with the given fields."""
    reg = load_contracts()
    ex = reg.version(feed, reg.contract(feed).latest).example
    event = {**ex, "event_id": str(uuid.uuid4()), "device_id": device, "location": {**UNIT, "room": room},
             "person_pk": person, "event_time": time.isoformat(), "payload": {**ex["payload"], **payload}}
    ok, reason = check_event(json.dumps(event), at(12, 0))
    assert reason is None, (reason, event)
    return event


def vitals(time, device, person, **kw):
    base = {"heart_rate": 70, "bp_systolic": 120, "bp_diastolic": 80, "body_temp_c": 36.6, "spo2_pct": 97,
            "battery_pct": 80, "worn": True}
    return make("vitals", time, device, "D01-01", person, **{**base, **kw})


def door(time, result, deny=None):
    return make("access", time, "BJ01-DR-D01-A", None, None, door_id="BJ01-D01-A", result=result,
                holder_type="staff", auth_method="card" if result != "forced_open" else "none", deny_reason=deny)


def alarm(time, ref, alarm_type, state, severity, operator=None):
    return make("alarm", time, "BJ01-ALM-D01-01", "D01-01", None, alarm_ref=ref, alarm_type=alarm_type,
                state=state, severity=severity, linked_camera_id=None, operator_code=operator)


def scan(time, cp, planned, deviation):
    return make("patrol", time, "BJ01-PTL-D01", f"BJ01-D01-CP{cp:02d}", None, route_id="BJ01-D01",
                round_id="BJ01-D01-202611271000", checkpoint_id=f"BJ01-D01-CP{cp:02d}", sequence=cp,
                planned_time=planned.isoformat(), deviation_s=deviation, officer_code="P1001", scan_method="rfid")


FIRST = [
    vitals(at(10, 10), "BJ01-WB-00001", P1, heart_rate=130, battery_pct=15),   # P1 v1, out of range, low battery
    vitals(at(10, 40), "BJ01-WB-00001", P1),                                   # P1 v2
    vitals(at(10, 55), "BJ01-WB-00001", P1),                                   # healthy device: heard at 10:55
    vitals(at(10, 15), "BJ01-WB-00002", P2, spo2_pct=88, heart_rate=210),      # out of range; implausible HR
    vitals(at(10, 20), "BJ01-WB-00003", P3),                                   # unknown person
    vitals(at(10, 25), "BJ01-WB-00004", P4, worn=False, heart_rate=None, bp_systolic=None, bp_diastolic=None,
           body_temp_c=None, spo2_pct=None, stress_index=None),                # before P4's first version
    door(at(10, 5), "granted"),
    door(at(10, 6), "denied", "out_of_schedule"),
    door(at(10, 30), "forced_open"),
    alarm(at(10, 31), "ALR-BJ01-000001", "emergency_button", "raised", 3),
    alarm(at(10, 33), "ALR-BJ01-000001", "emergency_button", "acknowledged", 3, "P1001"),
    alarm(at(10, 45), "ALR-BJ01-000002", "device_fault", "raised", 2),
    scan(at(10, 5, ), 1, at(10, 5), 0),
    scan(at(10, 17), 2, at(10, 7), 600),                                       # covered, not on time
]
LATE = [vitals(at(9, 50), "BJ01-WB-00002", P2), door(at(10, 50), "denied", "anti_passback")]
PLAN = [{"centre": "BJ01", "unit": "D01", "zone": "03", "route_id": "BJ01-D01", "round_id": "BJ01-D01-202611271000",
         "checkpoint_id": f"BJ01-D01-CP{k:02d}", "sequence": k, "planned_time": at(10, 3 + 2 * k).isoformat(),
         "officer_code": "P1001", "device_id": "BJ01-PTL-D01"} for k in (1, 2, 3)]


def deliver(settings, events: list[dict], delivered: datetime, seq: int = 0) -> None:
    by_feed: dict[str, list[dict]] = {}
    for e in events:
        by_feed.setdefault(e["feed"], []).append(e)
    for feed, evs in by_feed.items():
        folder = settings.landing_dir / "feeds" / feed / delivered.strftime("%Y%m%d")
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{feed}_{delivered.strftime('%Y%m%d%H%M')}_{seq:04d}.jsonl"
        (folder / name).write_text("".join(json.dumps(e) + "\n" for e in evs))


def run_all(spark, settings, th):
    return {"bronze": stream.run(spark, settings), "silver": silver.run(spark, settings, person_table=PERSON_TABLE),
            "hourly": hourly.run(spark, settings, th), "alerts": quality.run(spark, settings, at(11, 0), th)}


@pytest.fixture(scope="module")
def th():
    base = load_thresholds()
    return replace(base, clock="data", device_silence_minutes={"vitals": 30},
                   feed_silence_minutes={"vitals": 15, "access": 5})


@pytest.fixture(scope="module")
def world(spark, settings, tmp_path_factory, th):
    root = tmp_path_factory.mktemp("feeds_silver")
    s = replace(settings, landing_dir=root / "landing", var_dir=root / "var")
    for t in TABLES:
        spark.sql(f"drop table if exists {t}")
    people = spark.createDataFrame(
        [(P1, "1", at(1, 0).replace(month=1)), (P1, "2", at(10, 30)), (P2, "1", at(1, 0).replace(month=1)),
         (P4, "2", datetime(2026, 12, 1, tzinfo=CST))],
        "person_pk STRING, sex STRING, source_updated_at TIMESTAMP")
    scd2_merge(spark, row_hash(people, ["person_pk", "sex"]), PERSON_TABLE, ["person_pk"], "source_updated_at")
    plan_dir = s.landing_dir / "feeds" / "_plans"
    plan_dir.mkdir(parents=True)
    (plan_dir / "patrol_plan_202611271000_202611271100.jsonl").write_text("".join(json.dumps(r) + "\n" for r in PLAN))
    deliver(s, FIRST, at(11, 0))
    first = run_all(spark, s, th)
    snap = {r["event_id"]: r.asDict() for r in spark.table(silver.SILVER).collect()}
    hour10_first = spark.table(hourly.HOURLY).where(F.col("hour") == F.lit(at(10, 0))).first().asDict()
    deliver(s, LATE, at(11, 15))
    second = run_all(spark, s, th)
    return {"settings": s, "first": first, "second": second, "snap": snap, "hour10_first": hour10_first}


def test_every_event_conformed_once_with_typed_payload(world, spark):
    rows = spark.table(silver.SILVER)
    assert rows.count() == len(FIRST) + len(LATE) == rows.select("event_id").distinct().count()
    r = rows.where(F.col("event_id") == FIRST[3]["event_id"]).first()
    assert r["payload_vitals"]["spo2_pct"] == 88 and r["payload_vitals"]["heart_rate"] == 210
    assert r["payload_access"] is None and r["event_hour"].astimezone(CST) == at(10, 0)
    d = rows.where(F.col("event_id") == FIRST[8]["event_id"]).first()
    assert d["payload_access"]["result"] == "forced_open" and d["payload_vitals"] is None


def test_person_resolved_to_the_version_valid_at_event_time(world, spark):
    rows = {r["event_id"]: r for r in spark.table(silver.SILVER).collect()}
    versions = {(r["person_pk"], r["source_updated_at"]): r["valid_from"]
                for r in spark.table(PERSON_TABLE).collect()}
    v1 = next(v for (pk, _), v in versions.items() if pk == P1 and v.astimezone(CST).month == 1)
    v2 = next(v for (pk, _), v in versions.items() if pk == P1 and v.astimezone(CST).month == 11)
    expect = {FIRST[0]["event_id"]: ("matched", v1), FIRST[1]["event_id"]: ("matched", v2),
              FIRST[2]["event_id"]: ("matched", v2), FIRST[4]["event_id"]: ("unknown_person", None),
              FIRST[5]["event_id"]: ("before_first_version", None), FIRST[6]["event_id"]: ("no_person", None)}
    for eid, (match, vf) in expect.items():
        assert (rows[eid]["person_match"], rows[eid]["person_valid_from"]) == (match, vf), eid


def test_location_dimension(world, spark):
    dim = {r["room"]: r for r in spark.table(silver.DIM_LOCATION).collect()}
    assert dim["D01-01"]["place_kind"] == "dormitory" and dim[None]["place_kind"] == "unit"
    assert dim["BJ01-D01-CP01"]["place_kind"] == "patrol_checkpoint"
    assert dim["D01-01"]["centre_name"].startswith("北京市") and dim["D01-01"]["zone"] == "03"
    keys = spark.table(silver.SILVER).join(spark.table(silver.DIM_LOCATION), "location_key", "left_anti").count()
    assert keys == 0 and spark.table(silver.DIM_LOCATION).count() == len(dim)


def test_hourly_aggregates_hand_checked(world, spark):
    h = {r["hour"].astimezone(CST).hour: r.asDict() for r in spark.table(hourly.HOURLY).collect()}
    assert set(h) == {9, 10}
    first, ten = world["hour10_first"], h[10]
    expected_first = {"events": 14, "persons_seen": 4, "vitals_readings": 6, "vitals_out_of_range": 2,
                      "persons_vitals_out_of_range": 2, "wristbands_low_battery": 1, "wristbands_not_worn": 1,
                      "access_events": 3, "access_anomalies": 2, "access_forced": 1, "alarms_raised": 2,
                      "alarms_severe": 1, "device_faults": 1, "patrol_scans": 2, "patrol_planned": 3,
                      "patrol_covered": 2, "patrol_on_time": 1, "devices_reporting": 7, "zone": "03"}
    assert {k: first[k] for k in expected_first} == expected_first
    assert first["patrol_coverage"] == pytest.approx(2 / 3, abs=1e-4)
    # The second delivery: one more denied door at 10:50 updates hour 10; the late 09:50 reading makes hour 9.
    assert (ten["events"], ten["access_events"], ten["access_anomalies"]) == (15, 4, 3)
    assert (h[9]["events"], h[9]["vitals_readings"], h[9]["vitals_out_of_range"]) == (1, 1, 0)
    assert world["second"]["hourly"]["keys"] == 2


def test_alerts_silent_device_and_not_healthy_one(world, spark):
    alerts = spark.table(quality.ALERTS).collect()
    silent = {a["device_id"]: a for a in alerts if a["kind"] == "device_silent"}
    # As of 11:00 with a 30-minute limit: WB-00002 (last 10:15), -00003 (10:20), -00004 (10:25); not -00001 (10:55).
    assert set(silent) == {"BJ01-WB-00002", "BJ01-WB-00003", "BJ01-WB-00004"}
    a = silent["BJ01-WB-00004"]
    assert (a["feed"], a["threshold"], a["observed"]) == ("vitals", "30 min", 35.0)
    assert a["last_seen"].astimezone(CST) == at(10, 25)
    feeds = {(a["feed"], a["centre"]) for a in alerts if a["kind"] == "feed_silent"}
    assert feeds == {("access", "BJ01")}          # doors last heard 10:50 (> 5 min); vitals 10:55 (< 15 min)
    ranges = [a for a in alerts if a["kind"] == "range_violation"]
    assert len(ranges) == 1 and ranges[0]["observed"] == 1.0
    assert json.loads(ranges[0]["details"])["example"] == FIRST[3]["event_id"]


def test_rerun_with_nothing_new_changes_nothing(world, spark, th):
    def versions():
        return {t: spark.sql(f"describe history {t}").agg(F.max("version")).first()[0]
                for t in (stream.BRONZE, silver.SILVER, silver.DEVICES, hourly.HOURLY)}

    def content(t):
        return sorted(map(str, spark.table(t).drop("computed_at", "detected_at").collect()))

    before = versions(), {t: content(t) for t in (hourly.HOURLY, quality.ALERTS, silver.SILVER)}
    again = run_all(spark, world["settings"], th)
    assert again["bronze"]["batches"] == 0 and again["silver"]["batches"] == 0 and again["hourly"]["batches"] == 0
    assert again["alerts"]["inserted"] == 0 and again["alerts"]["updated"] == 0
    assert (versions(), {t: content(t) for t in (hourly.HOURLY, quality.ALERTS, silver.SILVER)}) == before


def test_unknown_person_resolved_once_known(world, spark):
    from spark_jobs.common.delta import scd2_merge as merge

    late_person = spark.createDataFrame([(P3, "1", at(1, 0).replace(month=1))],
                                        "person_pk STRING, sex STRING, source_updated_at TIMESTAMP")
    merge(spark, row_hash(late_person, ["person_pk", "sex"]), PERSON_TABLE, ["person_pk"], "source_updated_at")
    res = silver.run(spark, world["settings"], person_table=PERSON_TABLE)
    assert res["re_resolved"] == 1
    row = spark.table(silver.SILVER).where(F.col("event_id") == FIRST[4]["event_id"]).first()
    assert row["person_match"] == "matched" and row["person_valid_from"].astimezone(CST).month == 1
