"""Feed simulator: determinism, rates, routine, incidents, silent devices, patrol plan, and every injected flaw."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from feedsim_support import DAY, HIGH_FLAWS, Run, read_manifest, run_sim, settings_for

from smartrehab.feeds.contracts import MAX_MESSAGE_BYTES, REASON_CODES, load_contracts, reason_kind
from smartrehab.feeds.simulator import (
    FEEDS,
    MALFORMED_KINDS,
    FlawConfig,
    build_topology,
    default_persons,
    patrol_schedule,
    simulate,
)
from smartrehab.generate.incidents import KIND_BY_NAME

FILE_RE = re.compile(r"^feeds/(?P<feed>[a-z_]+)/(?P<day>\d{8})/(?P=feed)_(?P<stamp>\d{12})_(?P<seq>\d{4})\.jsonl$")


def _t(event: dict) -> datetime:
    return datetime.fromisoformat(event["event_time"])


# ---- files ------------------------------------------------------------------------------------------


def test_files_are_complete_jsonl_named_by_delivery_time(flawed_run: Run):
    root, manifest = flawed_run.root, flawed_run.manifest
    on_disk = sorted(str(p.relative_to(root)) for p in (root / "feeds").rglob("*") if p.is_file())
    data_files = [p for p in on_disk if not p.startswith("feeds/_")]
    assert sorted(f["path"] for f in manifest["files"]) == data_files
    assert not [p for p in on_disk if p.rsplit("/", 1)[-1].startswith(".")], "temporary files left behind"
    for f in manifest["files"]:
        m = FILE_RE.match(f["path"])
        assert m, f["path"]
        delivered = datetime.fromisoformat(f["delivered_at"])
        assert m["stamp"] == delivered.strftime("%Y%m%d%H%M") and m["day"] == m["stamp"][:8]
        assert m["feed"] == f["feed"]
        data = (root / f["path"]).read_bytes()
        assert data.endswith(b"\n") and b"\n\n" not in data
        assert data.count(b"\n") == f["lines"] and len(data) == f["bytes"]


def test_manifest_on_disk_and_counts_add_up(flawed_run: Run):
    manifest = flawed_run.manifest
    assert read_manifest(flawed_run) == json.loads(json.dumps(manifest))
    counts = manifest["counts"]
    malformed = Counter(m["feed"] for m in manifest["malformed"] if m["kind"] != "oversize")
    for feed in FEEDS:
        assert counts["valid_unique"][feed] == counts["generated"][feed] - malformed[feed]
        assert counts["lines"][feed] == sum(f["lines"] for f in manifest["files"] if f["feed"] == feed)
        assert sum(counts["versions"][feed].values()) == counts["generated"][feed]
    assert len(flawed_run.lines) == sum(counts["lines"].values())


def test_every_line_checks_exactly_as_the_manifest_says(flawed_run: Run):
    recorded = {(m["path"], m["line"]): m for m in flawed_run.manifest["malformed"]}
    assert len(recorded) == len(flawed_run.manifest["malformed"])
    for line in flawed_run.lines:
        bad = recorded.get((line.path, line.number))
        if bad is None:
            assert line.reason is None, f"{line.path}:{line.number} unexpectedly {line.reason}: {line.raw[:200]!r}"
        else:
            assert line.reason == bad["reason"], f"{line.path}:{line.number}"
            assert reason_kind(line.reason) == MALFORMED_KINDS[bad["kind"]]


def test_compiled_checker_agrees_with_jsonschema_on_simulated_lines(flawed_run: Run):
    registry = load_contracts()
    schema_bad = [ln for ln in flawed_run.lines if ln.reason and ln.reason.startswith("schema_violation:")]
    sample = [ln for ln in flawed_run.lines if ln.event is not None][::40]
    assert schema_bad and len(sample) > 100
    for line in schema_bad + sample:
        event = json.loads(line.raw)
        expected = None if line.reason is None else line.reason.split(":", 1)[1]
        assert registry.schema_violation(event) == expected, line.raw[:300]


def test_every_flaw_kind_was_injected(flawed_run: Run):
    flaws = flawed_run.manifest["counts"]["flaws"]
    assert set(flaws) == {"duplicate", "late", "out_of_order", *MALFORMED_KINDS}
    for kind, n in flaws.items():
        assert n > 0, f"no {kind} injected"
    assert flaws["oversize"] == HIGH_FLAWS.oversize_messages
    assert {reason_kind(line.reason) for line in flawed_run.lines if line.reason} == set(REASON_CODES)
    assert {k for k, n in Counter(m["kind"] for m in flawed_run.manifest["malformed"]).items() if n} == set(
        MALFORMED_KINDS)


def test_valid_events_are_unique_except_the_recorded_duplicates(flawed_run: Run):
    seen = Counter(e["event_id"] for e in flawed_run.valid())
    duplicates = flawed_run.manifest["duplicates"]
    assert len(set(duplicates)) == len(duplicates)
    for eid in duplicates:
        assert seen[eid] == 2, eid
    assert {eid for eid, n in seen.items() if n > 1} == set(duplicates)
    copies = defaultdict(set)
    for line in flawed_run.lines:
        if line.event is not None and line.event["event_id"] in set(duplicates[:50]):
            copies[line.event["event_id"]].add(line.raw)
    assert all(len(raws) == 1 for raws in copies.values()), "a re-sent event must be byte-identical"
    for feed in FEEDS:
        assert len(flawed_run.unique_valid(feed)) == flawed_run.manifest["counts"]["valid_unique"][feed]


def test_late_events_arrive_in_a_later_batch(flawed_run: Run):
    batch = timedelta(minutes=flawed_run.manifest["batch_minutes"])
    where = defaultdict(list)
    for line in flawed_run.lines:
        if line.event is not None:
            where[line.event["event_id"]].append(line)
    assert flawed_run.manifest["late"]
    for rec in flawed_run.manifest["late"]:
        (line,) = where[rec["event_id"]]
        lateness = line.delivered_at - _t(line.event)
        assert lateness > batch, rec
        assert lateness.total_seconds() == rec["delay_s"]
        assert line.delivered_at.isoformat() == rec["delivered_at"]
    # Events that are neither late nor re-sent arrive in their own batch.
    late = {r["event_id"] for r in flawed_run.manifest["late"]} | set(flawed_run.manifest["duplicates"])
    for eid, lines in where.items():
        if eid not in late:
            assert timedelta(0) < lines[0].delivered_at - _t(lines[0].event) <= batch


def test_out_of_order_lines_follow_a_later_event(flawed_run: Run):
    by_file = defaultdict(list)
    for line in flawed_run.lines:
        by_file[line.path].append(line)
    assert flawed_run.manifest["out_of_order"]
    for rec in flawed_run.manifest["out_of_order"]:
        lines = by_file[rec["path"]]
        me = lines[rec["line"] - 1]
        assert me.event["event_id"] == rec["event_id"]
        assert any(_t(o.event) > _t(me.event) for o in lines[: rec["line"] - 1] if o.event), rec


def test_oversize_only_when_asked(flawed_run: Run, default_run: Run):
    big = [line for line in flawed_run.lines if len(line.raw) > MAX_MESSAGE_BYTES]
    assert len(big) == 1 and big[0].reason == "oversize"
    assert len(big[0].raw) >= 10 * 1024 * 1024
    assert default_run.manifest["flaw_config"]["oversize_messages"] == 0
    assert max(len(line.raw) for line in default_run.lines) < 4096


def test_default_configuration_is_valid_and_mostly_clean(default_run: Run):
    flaws = default_run.manifest["counts"]["flaws"]
    total = len(default_run.lines)
    assert sum(1 for line in default_run.lines if line.reason) == sum(
        flaws[k] for k in MALFORMED_KINDS)
    assert sum(flaws.values()) < 0.02 * total


# ---- determinism --------------------------------------------------------------------------------------


def _tree(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "feeds").rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(tmp_path):
    kwargs = {"hours": 6, "check": False, "flaws": replace(HIGH_FLAWS, oversize_messages=0),
              "incident_scale": 40.0}
    a = run_sim(tmp_path / "a", **kwargs)
    b = run_sim(tmp_path / "b", **kwargs)
    tree_a, tree_b = _tree(a.root), _tree(b.root)
    assert len(tree_a) > 50
    assert tree_a == tree_b
    c = run_sim(tmp_path / "c", seed=12345, **kwargs)
    tree_c = _tree(c.root)
    assert tree_c.keys() & tree_a.keys()
    data_files = [k for k in tree_c.keys() & tree_a.keys() if not k.startswith("feeds/_")]
    assert data_files and all(tree_c[k] != tree_a[k] for k in data_files)


def test_rerunning_a_window_rewrites_the_same_files_and_windows_do_not_collide(tmp_path):
    s = settings_for(tmp_path)
    first = simulate(DAY, DAY + timedelta(hours=3), settings=s, flaws=FlawConfig(late=0.05))
    before = _tree(tmp_path)
    again = simulate(DAY, DAY + timedelta(hours=3), settings=s, flaws=FlawConfig(late=0.05))
    assert _tree(tmp_path) == before and again == first
    second = simulate(DAY + timedelta(hours=3), DAY + timedelta(hours=6), settings=s, flaws=FlawConfig(late=0.05))
    paths_1 = {f["path"] for f in first["files"]}
    paths_2 = {f["path"] for f in second["files"]}
    assert not paths_1 & paths_2
    end_1 = DAY + timedelta(hours=3)
    assert all(datetime.fromisoformat(f["delivered_at"]) <= end_1 for f in first["files"])
    assert all(datetime.fromisoformat(r["delivered_at"]) <= end_1 for r in first["late"])
    assert _tree(tmp_path).items() >= before.items()  # the first window's files are untouched


# ---- rates -------------------------------------------------------------------------------------------


def test_clean_day_has_exactly_288_vitals_per_person(clean_run: Run):
    persons = clean_run.manifest["persons"]
    assert persons == round(2700 * 0.01)
    vitals = clean_run.valid("vitals")
    assert len(vitals) == persons * 288 == clean_run.manifest["counts"]["generated"]["vitals"]
    per_device = defaultdict(list)
    for e in vitals:
        per_device[e["device_id"]].append(_t(e))
    assert len(per_device) == persons
    for times in per_device.values():
        times.sort()
        assert len(times) == 288
        assert {(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)} == {300.0}
    assert all(line.reason is None for line in clean_run.lines)
    assert len({e["event_id"] for e in clean_run.valid()}) == len(clean_run.lines)


def test_default_day_vitals_close_to_persons_times_288(default_run: Run):
    expected = default_run.manifest["persons"] * 288
    got = len(default_run.unique_valid("vitals"))
    assert 0.95 * expected <= got <= expected


def test_rates_scale_with_the_scale_factor(tmp_path):
    small = simulate(DAY, DAY + timedelta(hours=12), settings=settings_for(tmp_path, 0.01), write=False,
                     flaws=FlawConfig.none(), incident_scale=0, silent_device_rate=0)
    large = simulate(DAY, DAY + timedelta(hours=12), settings=settings_for(tmp_path, 0.04), write=False,
                     flaws=FlawConfig.none(), incident_scale=0, silent_device_rate=0)
    assert large["persons"] == 4 * small["persons"]
    assert large["counts"]["generated"]["vitals"] == 4 * small["counts"]["generated"]["vitals"]
    # Person-driven feeds scale with the persons (room- and unit-driven ones follow the devices, below).
    for feed in ("access", "attendance", "behaviour_score"):
        ratio = large["counts"]["generated"][feed] / max(1, small["counts"]["generated"][feed])
        assert 2.5 < ratio < 6, (feed, ratio)
    assert large["centres"] == small["centres"] == ["BJ01", "BJ02", "BJ03"]


def test_devices_scale_with_the_scale_factor(tmp_path):
    sf01, sf1, sf2 = (build_topology(settings_for(tmp_path, sf)) for sf in (0.1, 1.0, 2.0))
    assert (len(sf01.persons), len(sf1.persons), len(sf2.persons)) == (270, 2700, 5400)
    d01, d1, d2 = sf01.device_counts(), sf1.device_counts(), sf2.device_counts()
    for feed in ("alarm", "intercom", "video_analytics", "vitals"):
        assert d1[feed] >= 4 * d01[feed], feed  # rooms and wristbands grow with the beds
    assert d2 == {feed: 2 * n for feed, n in d1.items()}  # SF2: twice the centres, same layout
    assert [c.code for c in sf2.centres] == ["BJ01", "BJ02", "BJ03", "BJ04", "BJ05", "BJ06"]
    assert [c.code for c in sf1.centres] == ["BJ01", "BJ02", "BJ03"]
    assert max(len(u.persons) for c in sf2.centres for u in c.units) <= 120
    assert max(len(occ) for c in sf2.centres for occ in c.room_occupants.values()) <= 12
    assert {u.zone for c in sf2.centres for u in c.units} == {"01", "02", "03", "04"}


def _count_in(events: list[dict], start_h: float, end_h: float) -> int:
    lo, hi = DAY + timedelta(hours=start_h), DAY + timedelta(hours=end_h)
    return sum(1 for e in events if lo <= _t(e) < hi)


def test_activity_follows_the_daily_routine(clean_run: Run):
    access = clean_run.valid("access")
    night = _count_in(access, 0, 5)  # 5 hours asleep
    breakfast = _count_in(access, 6.5, 7.75)  # 75 minutes of meal and transit
    assert breakfast > 5 * night
    assert _count_in(access, 11.5, 12.5) > 3 * _count_in(access, 12.5, 14)  # lunch vs noon rest
    attendance = clean_run.valid("attendance")
    assert attendance and _count_in(attendance, 0, 7.5) == 0 and _count_in(attendance, 17.5, 24) == 0
    daily = [e for e in clean_run.valid("behaviour_score") if e["payload"]["entry_type"] == "daily"]
    assert len(daily) == clean_run.manifest["persons"]
    assert _count_in(daily, 20, 20.75) == len(daily)
    toilet = [e for e in clean_run.valid("video_analytics") if e["payload"]["behaviour"] == "toilet_area_entry"]
    assert _count_in(toilet, 0, 6) > _count_in(toilet, 8, 14)


def test_attendance_follows_zone_and_weekday(clean_run: Run):
    sessions = {(e["person_pk"], e["payload"]["session_id"]): e for e in clean_run.valid("attendance")}
    activities = Counter(e["payload"]["activity"] for e in sessions.values())
    assert activities["labour"] > 0 and activities["medical"] > 0
    for e in sessions.values():
        start = datetime.fromisoformat(e["payload"]["scheduled_start"])
        assert start.hour in (7, 14)
        if e["payload"]["activity"] == "labour":
            assert start.hour == 7  # morning only: 3.75 h a day, under the 6 h cap


def test_both_contract_versions_on_the_wire(default_run: Run):
    versions = default_run.manifest["counts"]["versions"]
    assert set(versions["vitals"]) == {"1.0", "2.0"}
    assert set(versions["access"]) == {"1.0", "2.0"}
    v1 = [e for e in default_run.valid("vitals") if e["contract_version"] == "1.0"]
    assert v1 and all("temperature" in e["payload"] and "spo2_pct" not in e["payload"] for e in v1)


# ---- incidents, silent devices, patrol plan ----------------------------------------------------------------


def test_incident_bursts(flawed_run: Run):
    incidents = flawed_run.manifest["incidents"]
    assert incidents
    valid = flawed_run.unique_valid()
    lost = {m["event_id"] for m in flawed_run.manifest["malformed"]}
    burst_feeds = ("alarm", "video_analytics", "intercom", "perimeter")
    inside = outside = 0
    inside_s = 0.0
    windows = defaultdict(list)
    for inc in incidents:
        start, end = datetime.fromisoformat(inc["start"]), datetime.fromisoformat(inc["end"])
        windows[inc["centre"]].append((start, end))
        inside_s += (end - start).total_seconds()
        for ids in inc["event_ids"].values():
            for eid in ids:
                assert eid in valid or eid in lost
                if eid in valid:
                    assert valid[eid]["location"]["centre"] == inc["centre"]
                    assert _t(valid[eid]) >= start
    for e in valid.values():
        if e["feed"] in burst_feeds:
            if any(s <= _t(e) < x for s, x in windows[e["location"]["centre"]]):
                inside += 1
            else:
                outside += 1
    outside_s = 86400 * len(flawed_run.manifest["centres"]) - inside_s
    assert inside / inside_s > 3 * outside / outside_s


def test_medical_incident_shows_in_the_vitals(flawed_run: Run):
    medical = [i for i in flawed_run.manifest["incidents"] if KIND_BY_NAME[i["kind"]].signature == "medical"]
    assert medical, "the fixture's seeded day must draw a medical incident, or this test checks nothing"
    checked = 0
    for inc in medical:
        start, end = datetime.fromisoformat(inc["start"]), datetime.fromisoformat(inc["end"])
        assert inc["persons"]
        for pk in inc["persons"]:
            readings = [e for e in flawed_run.valid("vitals") if e["person_pk"] == pk and start <= _t(e) < end
                        and e["payload"]["worn"]]
            assert all(e["payload"]["heart_rate"] > 100 for e in readings)
            checked += len(readings)
    assert checked


def test_silent_devices_send_nothing_while_silent(flawed_run: Run):
    silent = flawed_run.manifest["silent_devices"]
    assert len(silent) >= 5
    spans = defaultdict(list)
    for s in silent:
        spans[s["device_id"]].append((datetime.fromisoformat(s["start"]), datetime.fromisoformat(s["end"])))
    for e in flawed_run.valid():
        for s, x in spans.get(e["device_id"], ()):
            assert not s <= _t(e) < x, (e["device_id"], e["event_time"])
    wristbands = [d for d in spans if "-WB-" in d]
    assert wristbands
    counts = Counter(e["device_id"] for e in flawed_run.unique_valid("vitals").values())
    assert all(counts[d] < 288 for d in wristbands)


def test_patrol_plan_exported_and_scans_match_it(clean_run: Run, tmp_path):
    manifest = clean_run.manifest
    plan_file = clean_run.root / manifest["patrol_plan"]
    plan = [json.loads(x) for x in plan_file.read_text().splitlines()]
    assert plan == patrol_schedule(DAY, DAY + timedelta(days=1), settings=settings_for(tmp_path))
    assert len(plan) == manifest["counts"]["patrol_planned"]
    planned = {(r["round_id"], r["checkpoint_id"]): r for r in plan}
    scans = clean_run.valid("patrol")
    for e in scans:
        row = planned[(e["payload"]["round_id"], e["payload"]["checkpoint_id"])]
        assert e["payload"]["planned_time"] == row["planned_time"]
        assert (_t(e) - datetime.fromisoformat(row["planned_time"])).total_seconds() == e["payload"]["deviation_s"]
        assert e["device_id"] == row["device_id"]
    coverage = len({(e["payload"]["round_id"], e["payload"]["checkpoint_id"]) for e in scans}) / len(plan)
    assert 0.85 < coverage < 1.0
    # Per unit route: 6 checkpoints an hour, hourly at night (22-05), two-hourly by day (06-20).
    unit_route = next(r["route_id"] for r in plan if r["unit"])
    hours = Counter(datetime.fromisoformat(r["planned_time"]).hour for r in plan if r["route_id"] == unit_route)
    assert hours == {h: 6 for h in (*range(0, 6), *range(6, 21, 2), 22, 23)}


def test_persons_argument_is_used(tmp_path):
    pks = [f"{i:064x}" for i in range(1, 11)]
    m = simulate(DAY, DAY + timedelta(hours=1), settings=settings_for(tmp_path), persons=pks,
                 flaws=FlawConfig.none())
    assert m["persons"] == 10
    seen = set()
    for f in m["files"]:
        for raw in (tmp_path / f["path"]).read_text().splitlines():
            pk = json.loads(raw)["person_pk"]
            if pk:
                seen.add(pk)
    assert seen == set(pks)
    mapping = {pk: ("BJ05" if i % 2 else "BJ02") for i, pk in enumerate(pks)}
    topo = build_topology(settings_for(tmp_path), mapping)
    assert {p.pk: p.centre for p in topo.persons} == mapping
    assert default_persons(1, 3) == default_persons(1, 3) != default_persons(2, 3)
    assert all(re.fullmatch(r"[0-9a-f]{64}", pk) for pk in default_persons(1, 3))
    with pytest.raises(ValueError, match="64"):
        build_topology(settings_for(tmp_path), ["ABC"])


def test_arguments_are_checked(tmp_path):
    s = settings_for(tmp_path)
    with pytest.raises(ValueError, match="whole minutes"):
        simulate(DAY + timedelta(seconds=30), DAY + timedelta(hours=1), settings=s)
    with pytest.raises(ValueError, match="unknown feeds"):
        simulate(DAY, DAY + timedelta(hours=1), settings=s, feeds=["cctv"])
    with pytest.raises(ValueError, match="sum to at most 1"):
        FlawConfig(duplicate=0.6, late=0.6)
    with pytest.raises(ValueError, match="video_analytics"):
        simulate(DAY, DAY + timedelta(hours=1), settings=s, feeds=["vitals"], flaws=FlawConfig(oversize_messages=1))


def test_one_day_at_sf001_is_fast(default_run: Run):
    lines = sum(default_run.manifest["counts"]["lines"].values())
    assert lines > 9000
    assert default_run.seconds < 10, f"{default_run.seconds:.1f}s for one simulated day at SF0.01"
