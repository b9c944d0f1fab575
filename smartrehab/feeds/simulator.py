"""Deterministic simulator of the centres' live feeds, writing JSONL files into the landing zone.

For a time window it emits, per centre, the nine contracted feeds (see ``contracts/``) at the configured
scale factor (SF1 = 3 centres, 2,700 beds; persons and devices scale with SF):

* wristband vitals every 5 minutes per person (288 a day);
* access, intercom, video and alarm rates that follow the daily routine (06:00 rising, meals,
  education / labour blocks, 21:30 lights out) and weekday / weekend;
* guard-tour scans against a planned schedule (hourly at night, two-hourly by day);
* attendance check-in/out per education / treatment session, daily behaviour scores;
* one security world with the legacy register: the centres and units are those of
  ``smartrehab.generate.estate`` (the legacy world's brigades, ZJ_FQFQ.DDDM ``<centre>-<unit>``; legacy persons
  sit in the unit of their open zone stay), and the incidents those of ``smartrehab.generate.incidents``, the plan
  AQ_SJDJ is written from. Every planned incident of the window becomes a burst of correlated events at the
  register's centre, unit and minute, by its kind's signature: fight (fights, disturbances, assaults on officers,
  criminal cases: crowding and running on video, emergency and duress alarms, emergency calls, staff rushing in,
  serious-violation scores), medical (self-harm, suicide attempts, illness, accidents: a fall, an emergency
  button, medical calls, clinic doors, distressed vitals), perimeter (attempted escapes: intrusions, loitering and
  tripwires on the wall cameras, the control-room alarm, a unit door forced), search (contraband, drugs), fire
  and quiet (hunger strikes). The manifest lists each incident with its register number (SJBH), kind, type,
  unit, start and event ids. ``incident_scale`` multiplies the hazard (1 = the register; more only adds);
* precursors driven by the same latent tension of each unit and day: on a tense day (level ``max(0, x - 0.25)``)
  the unit's feeds show alarms, forced / held-open / denied doors, video alerts, serious violations and
  penalties, agitated vitals (heart rate and pressure up), room cameras and intercoms going silent, and patrol
  rounds skipped, checkpoints missed and scans late (:data:`PRECURSOR_RATES`, :data:`PATROL_GAP`); half of the
  incidents also give a short warning (2-5 unit events in the 30 min - 6 h before). Calm-day incidents and tense
  days without an incident both occur. The manifest's ``precursors`` lists every tense unit-day with its
  tension, level and planted counts. See ``docs/synthetic-story.md`` (Security);
* devices that go silent for hours;
* configurable flaws: duplicates (same event re-sent), late events (minutes to hours), out-of-order lines,
  and malformed messages (invalid JSON, not an object, missing event_id, unknown feed, unknown contract
  version, schema violations, future timestamps, and, only when asked for, ~10 MB oversize messages).

Files are written as ``<landing_dir>/feeds/<feed>/<YYYYMMDD>/<feed>_<YYYYMMDDHHMM>_<seq>.jsonl`` where the
time is the delivery time (end of the delivery batch). Each file is written under a hidden temporary name
and renamed into place, so a streaming reader never sees half a file. Next to the data, under
``<landing_dir>/feeds/_manifests/`` and ``_plans/`` (ignored by Spark's file sources because of the leading
underscore), go the manifest of everything injected and the planned patrol schedule.

Everything is a function of ``settings.seed``: the same seed and arguments give byte-identical files.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import hmac
import json
import math
import os
import random
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from smartrehab.feeds.contracts import CST, FUTURE_TOLERANCE
from smartrehab.feeds.persons import Placement
from smartrehab.generate import incidents as incident_plan
from smartrehab.generate.estate import BEDS_AT_SF1, EstateUnit, beds_per_centre, centre_beds, centre_units, split
from smartrehab.settings import Settings, get_settings

FEEDS: tuple[str, ...] = (
    "access", "alarm", "attendance", "behaviour_score", "intercom", "patrol", "perimeter", "video_analytics", "vitals",
)
VITALS_INTERVAL_S = 300
ROOM_SIZE = 12
DAY_S = 86400
_LOCAL_EPOCH = datetime(1970, 1, 1, tzinfo=CST)
_EPOCH_DATE = date(1970, 1, 1)
_encode = json.JSONEncoder(separators=(",", ":")).encode

#: Malformed-message kinds and the quarantine reason :func:`~smartrehab.feeds.contracts.check_event` gives them
#: (schema violations carry the field: the manifest records the full reason per line).
MALFORMED_KINDS: dict[str, str] = {
    "invalid_json": "invalid_json",
    "not_an_object": "not_an_object",
    "missing_event_id": "missing_event_id",
    "unknown_feed": "unknown_feed",
    "wrong_version": "unknown_contract_version",
    "schema_violation": "schema_violation",
    "future_timestamp": "future_timestamp",
    "oversize": "oversize",
}
_WRONG_VERSIONS = ("1.1", "9.9")


# ---- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlawConfig:
    """Share of events given each flaw (each event gets at most one), plus explicit oversize messages.

    ``oversize_messages`` extra messages of ``oversize_bytes`` (~10 MB) are only written when asked for.
    """

    duplicate: float = 0.002
    late: float = 0.002
    out_of_order: float = 0.002
    invalid_json: float = 0.0002
    not_an_object: float = 0.00005
    missing_event_id: float = 0.0001
    unknown_feed: float = 0.00005
    wrong_version: float = 0.0001
    schema_violation: float = 0.0002
    future_timestamp: float = 0.0001
    oversize_messages: int = 0
    oversize_bytes: int = 10 * 1024 * 1024
    late_min_s: int = 300
    late_max_s: int = 6 * 3600

    RATE_KINDS: ClassVar[tuple[str, ...]] = ("duplicate", "late", "out_of_order", "invalid_json", "not_an_object", "missing_event_id",
                  "unknown_feed", "wrong_version", "schema_violation", "future_timestamp")

    def __post_init__(self) -> None:
        rates = [getattr(self, k) for k in self.RATE_KINDS]
        if any(r < 0 for r in rates) or sum(rates) > 1:
            raise ValueError("flaw rates must be >= 0 and sum to at most 1")
        if self.oversize_messages < 0 or not 0 < self.late_min_s <= self.late_max_s:
            raise ValueError("oversize_messages must be >= 0 and 0 < late_min_s <= late_max_s")

    @classmethod
    def none(cls) -> FlawConfig:
        """No flaws at all: every line is a valid, unique, in-order event."""
        return cls(**{k: 0.0 for k in cls.RATE_KINDS})


# ---- time helpers -------------------------------------------------------------------------------


def _to_local_s(dt: datetime) -> int:
    """Seconds since 1970-01-01T00:00+08:00 (naive datetimes are taken as +08:00)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=CST)
    return int((dt - _LOCAL_EPOCH).total_seconds())


class _Clock:
    """Fast ISO 8601 (+08:00) formatting of local seconds."""

    def __init__(self) -> None:
        self._prefix: dict[int, str] = {}
        self._minute: dict[int, str] = {}

    def day_prefix(self, day: int) -> str:
        p = self._prefix.get(day)
        if p is None:
            p = self._prefix[day] = (_EPOCH_DATE + timedelta(days=day)).isoformat() + "T"
        return p

    def ts(self, ls: int) -> str:
        minute, s = divmod(ls, 60)
        prefix = self._minute.get(minute)
        if prefix is None:
            if len(self._minute) > 20000:
                self._minute.clear()
            day, mod = divmod(minute, 1440)
            prefix = self._minute[minute] = f"{self.day_prefix(day)}{mod // 60:02d}:{mod % 60:02d}:"
        return f"{prefix}{s:02d}+08:00"

    def compact(self, ls: int, seconds: bool = False) -> str:
        """YYYYMMDDHHMM (or YYYYMMDDHHMMSS)."""
        iso = self.ts(ls)
        out = iso[0:4] + iso[5:7] + iso[8:10] + iso[11:13] + iso[14:16]
        return out + iso[17:19] if seconds else out

    @staticmethod
    def date_of(ls: int) -> date:
        return _EPOCH_DATE + timedelta(days=ls // DAY_S)


# ---- the daily routine --------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    """One stretch of the daily routine and the activity it drives (rates per hour)."""

    name: str
    start: int  # minute of day
    end: int
    place: str  # room | canteen | corridor | block
    access: float  # door passages per detainee per hour
    staff: float  # door passages per staff member per hour
    intercom: float  # calls per dormitory-room terminal per hour
    video: float  # multiplier of event-driven video detections
    alarm: float  # multiplier of alarm rates
    hr: int  # heart-rate offset, bpm


_WEEKDAY_ROUTINE = (
    Phase("sleep", 0, 360, "room", 0.01, 0.3, 0.02, 0.3, 0.6, -10),
    Phase("rising", 360, 390, "room", 0.4, 1.0, 0.2, 1.0, 1.0, 0),
    Phase("breakfast", 390, 435, "canteen", 2.6, 1.5, 0.05, 1.5, 1.2, 5),
    Phase("transit", 435, 465, "corridor", 3.0, 1.5, 0.05, 2.0, 1.2, 8),
    Phase("morning_block", 465, 690, "block", 0.3, 1.2, 0.01, 0.8, 1.0, 5),
    Phase("lunch", 690, 750, "canteen", 2.6, 1.5, 0.05, 1.5, 1.2, 5),
    Phase("noon_rest", 750, 840, "room", 0.1, 0.8, 0.1, 0.5, 0.8, -4),
    Phase("afternoon_block", 840, 1020, "block", 0.3, 1.2, 0.01, 0.8, 1.0, 5),
    Phase("transit", 1020, 1035, "corridor", 3.0, 1.5, 0.05, 2.0, 1.2, 8),
    Phase("dinner", 1035, 1095, "canteen", 2.6, 1.5, 0.05, 1.5, 1.2, 5),
    Phase("free_time", 1095, 1140, "room", 0.5, 1.0, 0.3, 1.2, 1.0, 2),
    Phase("news", 1140, 1170, "room", 0.1, 0.8, 0.05, 0.6, 1.0, 0),
    Phase("evening_study", 1170, 1260, "room", 0.3, 0.8, 0.15, 0.8, 1.0, 0),
    Phase("hygiene", 1260, 1290, "room", 0.5, 0.8, 0.2, 1.2, 1.0, 0),
    Phase("lights_out", 1290, 1440, "room", 0.01, 0.3, 0.03, 0.3, 0.6, -8),
)
_WEEKEND_ROUTINE = tuple(
    Phase("weekend_training", p.start, p.end, "block", 0.3, 0.8, 0.01, 0.8, 1.0, 8) if p.name == "morning_block"
    else Phase("weekend_free", p.start, p.end, "room", 0.4, 0.6, 0.3, 1.2, 1.0, 0) if p.name == "afternoon_block"
    else p
    for p in _WEEKDAY_ROUTINE
)
_MINUTE_PHASE = tuple(
    tuple(next(p for p in routine if p.start <= m < p.end) for m in range(1440))
    for routine in (_WEEKDAY_ROUTINE, _WEEKEND_ROUTINE)
)
BLOCKS = {"AM": (465, 690), "PM": (840, 1020)}
_NIGHT_PHASES = ("sleep", "lights_out")
_ACTIVITY_ROOM = {
    "education": "EDU-01", "legal_education": "EDU-02", "psychology": "PSY-01", "rehab_training": "GYM-01",
    "labour": "WS-01", "vocational": "VOC-01", "medical": "CLINIC",
}
_ACTIVITY_CODE = {
    "education": "EDU", "legal_education": "LEG", "psychology": "PSY", "rehab_training": "RHT",
    "labour": "LAB", "vocational": "VOC", "medical": "MED",
}
_FACILITY_XY = {
    "CANTEEN": (30.0, 200.0), "EDU-01": (90.0, 220.0), "EDU-02": (110.0, 220.0), "PSY-01": (130.0, 220.0),
    "GYM-01": (160.0, 240.0), "WS-01": (220.0, 260.0), "VOC-01": (250.0, 260.0), "CLINIC": (60.0, 150.0),
    "YARD": (150.0, 180.0), "GATE": (10.0, 10.0), "CONTROL": (20.0, 40.0),
}


def _weekday(day: int) -> int:
    return (day + 3) % 7  # 1970-01-01 was a Thursday


def phase_at(ls: int) -> Phase:
    """The routine phase at a local time (weekday or weekend routine)."""
    day, sod = divmod(ls, DAY_S)
    return _MINUTE_PHASE[_weekday(day) >= 5][sod // 60]


def block_activity(zone: str, weekday: int, block: str) -> str | None:
    """The session a person of ``zone`` attends in ``block`` ("AM"/"PM") on ``weekday`` (0 = Monday).

    Labour is morning-only on weekdays (3.75 h a day), within the 5 days x 6 h weekly cap.
    """
    if weekday >= 5:
        return "rehab_training" if block == "AM" else None
    if zone == "01":
        return "medical" if block == "AM" else ("psychology" if weekday in (1, 3) else "rehab_training")
    if zone == "02":
        return "education" if block == "AM" else "rehab_training"
    if zone == "03":
        if block == "AM":
            return "labour"
        return ("education", "psychology", "rehab_training", "education", "legal_education")[weekday]
    return "vocational" if block == "AM" else "legal_education"


# ---- topology: centres, units, rooms, persons, devices ------------------------------------------


@dataclass
class Device:
    """A producing device, fixed in place."""

    device_id: str
    kind: str
    location: dict[str, Any]
    version: str = "1.0"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Person:
    """A detainee (pseudonymised) with a wristband and personal vital-sign baselines."""

    pk: str
    centre: str
    unit: str
    zone: str
    room: str
    wristband: str
    vitals_version: str
    hr0: int
    sys0: int
    dia0: int
    temp0: float
    spo2_0: int
    phase_s: int
    battery_phase: int
    unworn_p: float


@dataclass
class Unit:
    """A brigade (大队): a zone's block of dormitory rooms with its own doors, terminals and patrol route."""

    code: str
    zone: str
    index: int
    beds: int
    rooms: list[str]
    persons: list[Person]
    occupants: dict[str, list[Person]]
    officers: list[str]
    doors: list[Device] = field(default_factory=list)


@dataclass
class Centre:
    """One compulsory isolation centre and all its devices."""

    code: str
    index: int
    units: list[Unit]
    persons: list[Person]
    staff: int
    doors: list[Device] = field(default_factory=list)
    facility_doors: list[Device] = field(default_factory=list)
    alarms: list[Device] = field(default_factory=list)
    cameras: dict[str, list[Device]] = field(default_factory=dict)
    intercoms: list[Device] = field(default_factory=list)
    duty_intercoms: list[Device] = field(default_factory=list)
    segments: list[Device] = field(default_factory=list)
    patrol_devices: dict[str, Device] = field(default_factory=dict)
    score_terminals: dict[str, Device] = field(default_factory=dict)
    attendance_terminals: dict[str, Device] = field(default_factory=dict)
    places: dict[str, dict[str, Any]] = field(default_factory=dict)
    unit_by_code: dict[str, Unit] = field(default_factory=dict)
    room_occupants: dict[str, list[Person]] = field(default_factory=dict)
    room_xy: dict[str, tuple[float, float]] = field(default_factory=dict)
    control_officer: str = "P0000"

    def devices(self) -> list[Device]:
        """Every device of the centre except wristbands, in a fixed order."""
        out = list(self.doors) + list(self.alarms)
        for cams in self.cameras.values():
            out += cams
        out += self.intercoms + self.duty_intercoms + self.segments + list(self.patrol_devices.values())
        out += list(self.score_terminals.values()) + list(self.attendance_terminals.values())
        return out


@dataclass
class Topology:
    """Everything fixed about the simulated estate."""

    centres: list[Centre]
    persons: list[Person]
    scale_factor: float
    seed: int

    def device_counts(self) -> dict[str, int]:
        """Devices per feed."""
        counts = {f: 0 for f in FEEDS}
        kind_feed = {"DR": "access", "ALM": "alarm", "CAM": "video_analytics", "IC": "intercom", "PER": "perimeter",
                     "PTL": "patrol", "BST": "behaviour_score", "ATT": "attendance"}
        for c in self.centres:
            for d in c.devices():
                counts[kind_feed[d.kind]] += 1
        counts["vitals"] = len(self.persons)
        return counts


def default_persons(seed: int, n: int) -> list[str]:
    """``n`` deterministic person pseudonyms (64 hex) derived from the seed, for stand-alone simulation."""
    key = f"smartrehab-simulator:{seed}".encode()
    return [hmac.new(key, f"person:{i:07d}".encode(), hashlib.sha256).hexdigest() for i in range(n)]


def _centre_codes(settings: Settings) -> list[str]:
    path = settings.catalog_dir / "code_tables" / "centre.csv"
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [ln.split(",", 1)[0].strip() for ln in lines if ln.strip()]


def build_topology(settings: Settings | None = None,
                   persons: Sequence[str] | Mapping[str, str | Placement] | None = None) -> Topology:
    """The simulated estate at ``settings.scale_factor``: centres, units, rooms, persons and devices.

    Centres and their units are those of ``smartrehab.generate.estate`` (the legacy world's). ``persons`` is a
    list of person_pk pseudonyms (spread over the centres in order), or a mapping person_pk -> centre code or
    -> :class:`~smartrehab.feeds.persons.Placement` (centre, zone, unit, as ``legacy_persons`` gives it); by
    default ``round(2700 * SF)`` pseudonyms derived from the seed. Persons without a unit fill the units of
    their centre in proportion to the units' beds; each unit has ``ceil(persons / 12)`` rooms (at least one).
    """
    s = settings or get_settings()
    sf, seed = float(s.scale_factor), int(s.seed)
    if sf <= 0:
        raise ValueError("scale_factor must be positive")
    codes = _centre_codes(s)
    beds = centre_beds(sf, codes)
    rng = random.Random(f"{seed}|topology")
    by_centre: dict[str, list[tuple[str, str | None]]] = {}  # centre -> (person_pk, unit or None)
    if isinstance(persons, Mapping):
        for pk, where in persons.items():
            centre, unit = (where, None) if isinstance(where, str) else (where[0], where[2])
            if centre not in codes:
                raise ValueError(f"person {pk[:8]}…: centre {centre} is not in the centre code table")
            by_centre.setdefault(centre, []).append((pk, unit))
        centre_list = [c for c in codes if c in by_centre]
    else:
        pks = list(persons) if persons is not None else default_persons(seed, max(1, round(BEDS_AT_SF1 * sf)))
        centre_list = list(beds)[: max(1, min(len(beds), len(pks)))]
        by_centre = {c: [(pk, None) for pk in pks[i::len(centre_list)]] for i, c in enumerate(centre_list)}
    for pk, _ in (p for group in by_centre.values() for p in group):
        if len(pk) != 64 or any(ch not in "0123456789abcdef" for ch in pk):
            raise ValueError(f"person_pk {pk[:16]!r}… is not 64 lower-case hex characters")

    centres, everyone = [], []
    for code in centre_list:
        estate_units = centre_units(code, beds.get(code, beds_per_centre(sf, len(beds))))
        members: dict[str, list[str]] = {u.code: [] for u in estate_units}
        free = []
        for pk, unit_code in by_centre[code]:
            if unit_code is None:
                free.append(pk)
            elif unit_code in members:
                members[unit_code].append(pk)
            else:
                raise ValueError(f"person {pk[:8]}…: unit {unit_code} is not a unit of {code} at SF{sf} "
                                 f"({', '.join(members)}); simulate at the scale factor the legacy world used")
        total = sum(u.beds for u in estate_units)
        pos = 0
        for ucode, n in split(len(free), [(u.code, u.beds / total) for u in estate_units]):
            members[ucode] += free[pos: pos + n]
            pos += n
        centre_idx = codes.index(code) + 1
        units: list[Unit] = []
        people: list[Person] = []
        for eu in estate_units:
            pks = members[eu.code]
            unit = Unit(code=eu.code, zone=eu.zone, index=len(units), beds=eu.beds, rooms=[], persons=[],
                        occupants={}, officers=[])
            n_off = max(2, math.ceil(len(pks) / 20))
            unit.officers = [f"P{centre_idx}{len(units) * 40 + k + 1:03d}" for k in range(n_off)]
            unit.rooms = [f"{eu.code}-{r + 1:02d}" for r in range(max(1, math.ceil(len(pks) / ROOM_SIZE)))]
            for room in unit.rooms:
                unit.occupants[room] = []
            for k, pk in enumerate(pks):
                room = unit.rooms[k // ROOM_SIZE]
                person = Person(
                    pk=pk, centre=code, unit=eu.code, zone=eu.zone, room=room,
                    wristband=f"{code}-WB-{len(people) + 1:05d}",
                    vitals_version="1.0" if rng.random() < 0.3 else "2.0",
                    hr0=rng.randint(58, 84), sys0=rng.randint(104, 134), dia0=rng.randint(64, 86),
                    temp0=round(rng.uniform(36.2, 36.8), 2), spo2_0=rng.randint(95, 99),
                    phase_s=rng.randrange(VITALS_INTERVAL_S), battery_phase=rng.randrange(2 * DAY_S),
                    unworn_p=0.02 if rng.random() < 0.05 else 0.002,
                )
                unit.persons.append(person)
                unit.occupants[room].append(person)
                people.append(person)
            units.append(unit)
        centre = Centre(code=code, index=centre_idx, units=units, persons=people,
                        staff=max(2, round(0.25 * len(people))), control_officer=f"P{centre_idx}999")
        _equip(centre, rng)
        centres.append(centre)
        everyone += people
    return Topology(centres=centres, persons=everyone, scale_factor=sf, seed=seed)


def _equip(c: Centre, rng: random.Random) -> None:
    """Places and devices of a centre."""
    code = c.code
    c.unit_by_code = {u.code: u for u in c.units}
    c.room_occupants = {room: occ for u in c.units for room, occ in u.occupants.items()}
    shared = {name: {"centre": code, "unit": None, "zone": "99", "room": name} for name in _FACILITY_XY}
    c.places.update(shared)
    for unit in c.units:
        x0 = 40.0 + 70.0 * unit.index
        c.places[f"{unit.code}-COR"] = {"centre": code, "unit": unit.code, "zone": unit.zone, "room": f"{unit.code}-COR"}
        c.room_xy[f"{unit.code}-COR"] = (x0 + 15.0, 80.0)
        for r, room in enumerate(unit.rooms):
            c.places[room] = {"centre": code, "unit": unit.code, "zone": unit.zone, "room": room}
            c.room_xy[room] = (x0 + 5.0 * (r % 6), 60.0 + 8.0 * (r // 6))
    c.room_xy.update(_FACILITY_XY)

    def dev(kind: str, local: str, place: dict[str, Any], version: str = "1.0", **extra: Any) -> Device:
        return Device(device_id=f"{code}-{kind}-{local}", kind=kind, location=place, version=version, extra=extra)

    legacy_doors = c.index % 3 == 0  # every third centre still runs 1.0 card-only door controllers
    for unit in c.units:
        unit_place = {"centre": code, "unit": unit.code, "zone": unit.zone, "room": None}
        for side in ("A", "B"):
            version = "1.0" if legacy_doors or rng.random() < 0.25 else "2.0"
            d = dev("DR", f"{unit.code}-{side}", unit_place, version, door_id=f"{code}-{unit.code}-{side}")
            unit.doors.append(d)
            c.doors.append(d)
    for name in ("GATE", "CANTEEN", "EDU-01", "WS-01", "CLINIC", "GYM-01"):
        version = "1.0" if legacy_doors or rng.random() < 0.25 else "2.0"
        d = dev("DR", name, c.places[name], version, door_id=f"{code}-{name}")
        c.facility_doors.append(d)
        c.doors.append(d)

    cams_room, cams_cor = [], []
    for unit in c.units:
        for room in unit.rooms:
            c.alarms.append(dev("ALM", room, c.places[room], room=room, camera=f"{code}-CAM-{room}"))
            cams_room.append(dev("CAM", room, c.places[room], room=room))
            c.intercoms.append(dev("IC", room, c.places[room], room=room, unit=unit.code))
        cor = c.places[f"{unit.code}-COR"]
        c.alarms.append(dev("ALM", f"{unit.code}-DUTY", cor, camera=f"{code}-CAM-{unit.code}-COR"))
        cams_cor.append(dev("CAM", f"{unit.code}-COR", cor, unit=unit.code))
        c.duty_intercoms.append(dev("IC", f"{unit.code}-DUTY", cor, unit=unit.code))
        c.patrol_devices[unit.code] = dev("PTL", unit.code, cor, unit=unit.code)
        c.score_terminals[unit.code] = dev("BST", unit.code, {"centre": code, "unit": unit.code, "zone": unit.zone,
                                                              "room": None})
    c.alarms.append(dev("ALM", "CTRL", c.places["CONTROL"], camera=None))
    c.alarms.append(dev("ALM", "CANTEEN", c.places["CANTEEN"], camera=f"{code}-CAM-CANTEEN"))
    n_segments = 8 + math.ceil(len(c.units) / 2)
    sensor_types = ("infrared_beam", "vibration_fence", "hv_fence", "microwave", "buried_cable")
    cams_per = []
    for k in range(n_segments):
        seg = f"S{k + 1:02d}"
        place = {"centre": code, "unit": None, "zone": "99", "room": f"PER-{seg}"}
        c.places[f"PER-{seg}"] = place
        c.room_xy[f"PER-{seg}"] = (300.0 * k / n_segments, 0.0)
        c.segments.append(dev("PER", seg, place, segment=f"{code}-{seg}", sensor=sensor_types[k % len(sensor_types)]))
        cams_per.append(dev("CAM", f"PER-{seg}", place))
    c.patrol_devices["PER"] = dev("PTL", "PER", c.places["CONTROL"])
    c.cameras = {
        "room": cams_room, "corridor": cams_cor, "perimeter": cams_per,
        "canteen": [dev("CAM", "CANTEEN", c.places["CANTEEN"])], "yard": [dev("CAM", "YARD", c.places["YARD"])],
    }
    for room in _ACTIVITY_ROOM.values():
        if room not in c.attendance_terminals:
            c.attendance_terminals[room] = dev("ATT", room, c.places[room])


# ---- patrol plan ----------------------------------------------------------------------------------

PATROL_DAY_HOURS = (6, 8, 10, 12, 14, 16, 18, 20)
PATROL_NIGHT_HOURS = (22, 23, 0, 1, 2, 3, 4, 5)
UNIT_CHECKPOINTS = 6
CHECKPOINT_SPACING_S = 120


def _plan_day(centre: Centre, day: int, clock: _Clock) -> list[dict[str, Any]]:
    """Planned checkpoints of one centre-day, ordered by planned time."""
    rows = []
    day0 = day * DAY_S
    stamp = clock.compact(day0)[:8]
    routes: list[tuple[str, Unit | None, int, int]] = [(u.code, u, UNIT_CHECKPOINTS, 5) for u in centre.units]
    routes.append(("PER", None, len(centre.segments), 20))
    for hour in sorted(PATROL_DAY_HOURS + PATROL_NIGHT_HOURS):
        for r_i, (route, unit, n_cp, minute) in enumerate(routes):
            round_start = day0 + hour * 3600 + minute * 60
            route_id = f"{centre.code}-{route}"
            officers = unit.officers if unit else [centre.control_officer]
            for seq in range(1, n_cp + 1):
                rows.append({
                    "centre": centre.code, "unit": unit.code if unit else None, "zone": unit.zone if unit else "99",
                    "route_id": route_id, "round_id": f"{route_id}-{stamp}{hour:02d}00",
                    "checkpoint_id": f"{route_id}-CP{seq:02d}", "sequence": seq,
                    "planned_ls": round_start + (seq - 1) * CHECKPOINT_SPACING_S,
                    "officer_code": officers[(hour + r_i) % len(officers)],
                    "device_id": centre.patrol_devices[route].device_id,
                })
    rows.sort(key=lambda r: r["planned_ls"])
    return rows


def patrol_schedule(start: datetime, end: datetime, settings: Settings | None = None,
                    persons: Sequence[str] | Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The planned guard tour for ``[start, end)``: one row per centre, route, round and checkpoint.

    Rounds run every two hours by day (06:00-20:00) and hourly at night (22:00-05:00), over 6 checkpoints per
    unit route and one checkpoint per perimeter segment. Rows carry centre, unit, zone, route_id, round_id,
    checkpoint_id, sequence, planned_time (ISO +08:00), officer_code and device_id: the plan that
    "patrol coverage against plan" compares the patrol feed with.
    """
    topo = build_topology(settings, persons)
    return _schedule(topo, _to_local_s(start), _to_local_s(end), _Clock())


def _schedule(topo: Topology, start_ls: int, end_ls: int, clock: _Clock) -> list[dict[str, Any]]:
    out = []
    for day in range(start_ls // DAY_S, (end_ls - 1) // DAY_S + 1):
        for centre in topo.centres:
            for row in _plan_day(centre, day, clock):
                if start_ls <= row["planned_ls"] < end_ls:
                    r = dict(row)
                    r["planned_time"] = clock.ts(r.pop("planned_ls"))
                    out.append(r)
    out.sort(key=lambda r: (r["planned_time"], r["centre"], r["route_id"], r["sequence"]))
    return out


# ---- random helpers -------------------------------------------------------------------------------


# A fixed table of standard-normal draws: noise = _NORMAL[rng.getrandbits(12)] * sd is ~10x cheaper than gauss.
_NORMAL = tuple(random.Random(0x5EED).gauss(0.0, 1.0) for _ in range(4096))


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def _clamp(v: float, lo: float, hi: float) -> float:
    return lo if v < lo else hi if v > hi else v


# ---- the simulation -------------------------------------------------------------------------------

Event = tuple[int, dict[str, Any]]


@dataclass
class _Incident:
    incident_id: str
    centre: str
    kind: str
    incident_type: str
    start: int
    end: int
    unit: str
    room: str | None
    persons: list[str]
    warning_start: int | None = None
    vitals: str | None = None  # how the involved persons' vitals change during it: medical | agitation
    events: dict[str, list[Event]] = field(default_factory=dict)


#: Precursors per unit-day, per unit of precursor level and of bed factor (beds / 100, floored at 30 beds):
#: (feed the events go to, expected events). Patrol gaps scale the same level (see ``_day_patrol``).
PRECURSOR_RATES = (("alarm", 1.2), ("access", 4.0), ("video_analytics", 2.0), ("behaviour_score", 0.8),
                   ("vitals", 0.8), ("silent", 0.3))
PATROL_GAP = (0.12, 0.08, 0.3)  # per level: extra share of rounds skipped, checkpoints missed, scans late


class _Simulation:
    """One run: a window, a topology, flaw settings; generates batch after batch and writes the files."""

    def __init__(self, topo: Topology, start_ls: int, end_ls: int, *, landing: Path, feeds: Sequence[str],
                 flaws: FlawConfig, batch_s: int, incident_scale: float, silent_device_rate: float,
                 max_lines_per_file: int, write: bool):
        self.topo, self.start, self.end = topo, start_ls, end_ls
        self.seed = topo.seed
        self.landing, self.feeds, self.flaws = landing, list(feeds), flaws
        self.batch_s, self.write = batch_s, write
        self.incident_scale, self.silent_rate = incident_scale, silent_device_rate
        self.max_lines = max_lines_per_file
        self.clock = _Clock()
        self.n_batches = math.ceil((end_ls - start_ls) / batch_s)
        self.pending: dict[int, dict[str, list[Event]]] = {}
        self.carry: dict[tuple[int, str], list[tuple[int, str, str]]] = {}  # (batch, feed) -> re-sent / late lines
        self._day_cache: dict[tuple[str, str, int], list[Event]] = {}
        self._wind: dict[tuple[str, int], list[float]] = {}
        self.silent: dict[str, list[tuple[int, int]]] = {}
        self.incidents: list[_Incident] = []
        # Events the security plan adds (incident bursts, warnings, precursors): centre -> feed -> events.
        self.planted: dict[str, dict[str, list[Event]]] = {c.code: {} for c in topo.centres}
        self.levels: dict[tuple[str, str, int], float] = {}  # (centre, unit, day) -> precursor level
        self.m_precursors: list[dict[str, Any]] = []
        self._vitals_override: dict[str, list[tuple[int, int, str]]] = {}
        self.m_files: list[dict[str, Any]] = []
        self.m_duplicates: list[str] = []
        self.m_late: list[dict[str, Any]] = []
        self.m_out_of_order: list[dict[str, Any]] = []
        self.m_malformed: list[dict[str, Any]] = []
        self.generated = {f: 0 for f in self.feeds}
        self.valid = {f: 0 for f in self.feeds}
        self.lines = {f: 0 for f in self.feeds}
        self.versions: dict[str, dict[str, int]] = {f: {} for f in self.feeds}
        self.dropped_after_window = 0
        kinds = FlawConfig.RATE_KINDS
        acc, self._thresholds = 0.0, []
        for k in kinds:
            acc += getattr(flaws, k)
            self._thresholds.append((acc, k))
        self._plan_silences()
        self._plan_security()
        self._oversize_at = self._plan_oversize()

    # -- planning ---------------------------------------------------------------------------------
    def _days(self) -> range:
        return range(self.start // DAY_S, (self.end - 1) // DAY_S + 1)

    def _plan_silences(self) -> None:
        """Devices that go silent for 1-8 hours (planned per centre-day, from the day before the window)."""
        if self.silent_rate <= 0:
            return
        for day in range(self.start // DAY_S - 1, (self.end - 1) // DAY_S + 1):
            for c in self.topo.centres:
                rng = random.Random(f"{self.seed}|silent|{c.code}|{day}")
                ids = [p.wristband for p in c.persons] + [d.device_id for d in c.devices()]
                for dev_id in ids:
                    if rng.random() < self.silent_rate:
                        s = day * DAY_S + rng.randrange(DAY_S)
                        e = s + rng.randint(3600, 8 * 3600)
                        if s < self.end and e > self.start:
                            self.silent.setdefault(dev_id, []).append((s, e))

    def is_silent(self, device_id: str, ls: int) -> bool:
        spans = self.silent.get(device_id)
        return bool(spans) and any(s <= ls < e for s, e in spans)

    def _plan_security(self) -> None:
        """Tension, precursors and incidents of every unit from the shared plan (``smartrehab.generate.incidents``).

        Incidents of the window get their burst; those of the day after only their warning (so that the
        next window's incidents are announced in this one, as one long window would show them). Precursors
        are planned from the day before the window too: its silences, agitation and late patrol scans may
        reach into the window.
        """
        days = self._days()
        first, last = days[0] - 1, days[-1] + 1
        for c in self.topo.centres:
            for unit in c.units:
                eu = EstateUnit(c.code, unit.code, unit.zone, unit.beds)
                series = incident_plan.tension_series(self.seed, c.code, unit.code, first, last)
                for day, x in zip(range(first, last + 1), series, strict=True):
                    if day <= days[-1]:
                        level = incident_plan.precursor_level(x)
                        self.levels[(c.code, unit.code, day)] = level
                        if level > 0:
                            self._plan_precursors(c, unit, day, x, level, record=day >= days[0])
                    for planned in incident_plan.plan_unit_day(self.seed, eu, day, x, self.incident_scale):
                        inc = self._make_incident(c, planned)
                        if day < days[0]:
                            # Yesterday's incident may run past midnight: its late events and its
                            # persons' vitals reach into the window (its warning and start do not).
                            if inc.end > self.start:
                                self._plant(c, {f: [e for e in evs if e[0] >= self.start]
                                                for f, evs in inc.events.items()})
                                for pk in inc.persons if inc.vitals else ():
                                    self._vitals_override.setdefault(pk, []).append(
                                        (inc.start, inc.end, inc.vitals))
                            continue
                        if inc.warning_start is not None:
                            self._plant(c, self._warning(c, unit, inc))
                        if self.start <= inc.start < self.end:
                            self.incidents.append(inc)
                            self._plant(c, inc.events)
                            for pk in inc.persons if inc.vitals else ():
                                self._vitals_override.setdefault(pk, []).append((inc.start, inc.end, inc.vitals))
        self.incidents.sort(key=lambda i: (i.start, i.centre, i.unit, i.incident_id))

    def _plant(self, c: Centre, events: Mapping[str, list[Event]]) -> None:
        for feed, evs in events.items():
            self.planted[c.code].setdefault(feed, []).extend(evs)

    def _plan_precursors(self, c: Centre, unit: Unit, day: int, x: float, level: float, record: bool) -> None:
        """A tense unit-day: alarms, access anomalies, video alerts, serious violations, agitated vitals and
        devices going silent in the unit, each Poisson with mean rate x level x bed factor."""
        rng = random.Random(f"{self.seed}|precursors|{c.code}|{unit.code}|{day}")
        size = incident_plan.bed_factor(unit.beds)
        day0 = day * DAY_S
        counts = {feed: _poisson(rng, rate * level * size) for feed, rate in PRECURSOR_RATES}
        ev: dict[str, list[Event]] = {}

        def waking() -> int:
            return day0 + rng.randint(6 * 3600, 23 * 3600)

        def someone() -> Person | None:
            return rng.choice(unit.persons) if unit.persons else None

        room_alarms = [d for d in c.alarms if d.location.get("unit") == unit.code and "room" in d.extra]
        cams = [d for d in c.cameras["room"] if d.location["unit"] == unit.code] + [
            d for d in c.cameras["corridor"] if d.extra["unit"] == unit.code]
        for _ in range(counts["alarm"]):
            p = someone()
            ev.setdefault("alarm", []).extend(self.alarm_events(
                rng, c, rng.choice(room_alarms), waking(), rng.choice(("emergency_button", "emergency_button", "tamper")),
                p.pk if p is not None and rng.random() < 0.3 else None))
        for _ in range(counts["access"]):
            p = someone()
            result = rng.choice(("forced_open", "held_open", "denied"))
            ev.setdefault("access", []).append(self.access_event(
                rng, c, waking(), rng.choice(unit.doors), "detainee" if p else "staff", p, result))
        for _ in range(counts["video_analytics"]):
            cam = rng.choice(cams)
            behaviour = rng.choice(("crowd_gathering", "sudden_running", "loitering_near_wall"))
            ev.setdefault("video_analytics", []).append(self.video_event(
                rng, cam, waking(), behaviour, headcount=rng.randint(4, 9) if behaviour == "crowd_gathering" else None))
        term = c.score_terminals[unit.code]
        for _ in range(counts["behaviour_score"] if unit.persons else 0):
            p = rng.choice(unit.persons)
            serious = rng.random() < 0.5
            ev.setdefault("behaviour_score", []).append(self.ev(
                rng, "behaviour_score", "1.0", term.device_id, term.location, p.pk,
                day0 + rng.randint(8 * 3600, 19 * 3600), {
                    "score_date": self.clock.date_of(day0).isoformat(),
                    "entry_type": "serious_violation" if serious else "penalty", "dimension": "rule_compliance",
                    "points": float(-rng.randint(20, 50) if serious else -rng.randint(6, 10)),
                    "reason_code": f"R{rng.randint(80, 99):03d}", "officer_code": rng.choice(unit.officers)}))
        for _ in range(counts["vitals"] if unit.persons else 0):
            t = waking()
            self._vitals_override.setdefault(rng.choice(unit.persons).pk, []).append(
                (t, t + rng.randint(30, 90) * 60, "agitation"))
        quiet = [d for d in c.cameras["room"] + c.intercoms if d.location["unit"] == unit.code]
        for _ in range(counts["silent"]):
            t = day0 + rng.randrange(DAY_S)
            dev, t_end = rng.choice(quiet).device_id, t + rng.randint(3600, 4 * 3600)
            if t < self.end and t_end > self.start:
                self.silent.setdefault(dev, []).append((t, t_end))
        self._plant(c, ev)
        if record:
            self.m_precursors.append({"centre": c.code, "unit": unit.code, "date": self.clock.date_of(day0).isoformat(),
                                      "tension": round(x, 3), "level": round(level, 3),
                                      "planted": {k: n for k, n in counts.items() if n}})

    def _plan_oversize(self) -> dict[int, int]:
        rng = random.Random(f"{self.seed}|oversize|{self.start}")
        out: dict[int, int] = {}
        for _ in range(self.flaws.oversize_messages):
            k = rng.randrange(self.n_batches)
            out[k] = out.get(k, 0) + 1
        return out

    # -- event construction -------------------------------------------------------------------------
    def ev(self, rng: random.Random, feed: str, version: str, device_id: str, location: dict[str, Any],
           person_pk: str | None, ls: int, payload: dict[str, Any]) -> Event:
        return ls, {
            "event_id": _uuid(rng), "feed": feed, "contract_version": version, "device_id": device_id,
            "location": location, "person_pk": person_pk, "event_time": self.clock.ts(ls), "payload": payload,
        }

    @staticmethod
    def _person_place(p: Person, ls: int, ph: Phase) -> str:
        if ph.place == "room":
            return p.room
        if ph.place == "canteen":
            return "CANTEEN"
        if ph.place == "corridor":
            return f"{p.unit}-COR"
        activity = block_activity(p.zone, _weekday(ls // DAY_S), "AM" if ls % DAY_S < 720 * 60 else "PM")
        return _ACTIVITY_ROOM[activity] if activity else p.room

    # -- feeds: vitals ------------------------------------------------------------------------------
    def gen_vitals(self, c: Centre, t0: int, t1: int, rng: random.Random) -> list[Event]:
        out: list[Event] = []
        bits, rand, normal = rng.getrandbits, rng.random, _NORMAL
        for p in c.persons:
            t = t0 + (p.phase_s - t0) % VITALS_INTERVAL_S
            overrides = self._vitals_override.get(p.pk, ())
            while t < t1:
                if self.is_silent(p.wristband, t):
                    t += VITALS_INTERVAL_S
                    continue
                ph = phase_at(t)
                place = self._person_place(p, t, ph)
                boost = 25 if place == "GYM-01" and ph.place == "block" else 0
                worn = rand() >= p.unworn_p
                hr = sys_ = dia = spo2 = stress = None
                temp: float | None = None
                if worn:
                    hr_f = p.hr0 + ph.hr + boost + 4 * normal[bits(12)]
                    sys_f = p.sys0 + 0.4 * (ph.hr + boost) + 5 * normal[bits(12)]
                    temp_f = p.temp0 + (-0.3 if ph.name in _NIGHT_PHASES else 0.0) + 0.12 * normal[bits(12)]
                    spo2_f = p.spo2_0 + 0.8 * normal[bits(12)]
                    for s, e, kind in overrides:
                        if s <= t < e:
                            if kind == "medical":
                                hr_f, spo2_f, temp_f = 128 + 6 * normal[bits(12)], 86 + 1.5 * normal[bits(12)], temp_f + 1.1
                            else:
                                hr_f, sys_f = hr_f + 45, sys_f + 25
                    hr = int(_clamp(round(hr_f), 35, 220))
                    sys_ = int(_clamp(round(sys_f), 80, 220))
                    dia = int(_clamp(round(p.dia0 + 0.3 * (sys_ - p.sys0) + 4 * normal[bits(12)]), 45, 140))
                    temp = round(_clamp(temp_f, 34.0, 42.0), 1)
                    spo2 = int(_clamp(round(spo2_f), 70, 100))
                    stress = int(_clamp(round(20 + 1.3 * (hr - p.hr0) + 8 * normal[bits(12)]), 0, 100))
                battery = int(100 - 80 * ((t + p.battery_phase) % (2 * DAY_S)) / (2 * DAY_S))
                x, y = c.room_xy.get(place, (0.0, 0.0))
                pos_x = round(max(0.0, x + 2 * normal[bits(12)]), 1)
                pos_y = round(max(0.0, y + 2 * normal[bits(12)]), 1)
                beacon = f"{c.code}-BCN-{place}"
                if p.vitals_version == "2.0":
                    payload = {"worn": worn, "heart_rate": hr, "bp_systolic": sys_, "bp_diastolic": dia,
                               "body_temp_c": temp, "spo2_pct": spo2, "stress_index": stress,
                               "battery_pct": battery, "beacon_id": beacon, "pos_x_m": pos_x, "pos_y_m": pos_y}
                else:
                    payload = {"worn": worn, "heart_rate": hr, "bp_systolic": sys_, "bp_diastolic": dia,
                               "temperature": temp, "battery_pct": battery, "beacon_id": beacon,
                               "pos_x_m": pos_x, "pos_y_m": pos_y}
                out.append(self.ev(rng, "vitals", p.vitals_version, p.wristband, c.places[place], p.pk, t, payload))
                t += VITALS_INTERVAL_S
        return out

    # -- feeds: event-driven (Poisson over the routine) --------------------------------------------
    def _minutes(self, t0: int, t1: int) -> Iterable[tuple[int, int, Phase]]:
        """(start, end, phase) per started minute of [t0, t1)."""
        m = t0
        while m < t1:
            nxt = min(t1, (m // 60 + 1) * 60)
            yield m, nxt, phase_at(m)
            m = nxt

    def access_event(self, rng: random.Random, c: Centre, ls: int, door: Device, holder: str,
                     person: Person | None, result: str = "granted", direction: str | None = None) -> Event:
        direction = direction or rng.choice(("in", "out"))
        deny = None
        if result == "denied":
            deny = rng.choices(("unknown_credential", "out_of_schedule", "anti_passback", "expired",
                                "not_authorised_for_area"), (2, 4, 2, 1, 3))[0]
        forced = result in ("forced_open", "held_open")
        if door.version == "2.0":
            auth = "none" if forced else (rng.choice(("face", "card_face")) if holder == "detainee"
                                          else rng.choice(("card", "card_face", "fingerprint")))
            payload = {"door_id": door.extra["door_id"], "direction": direction,
                       "holder_type": "unknown" if forced else holder, "auth_method": auth,
                       "result": result, "deny_reason": deny}
        else:
            cred = None if forced else {"detainee": "detainee_card", "staff": "staff_card",
                                        "visitor": "visitor_card"}[holder]
            payload = {"door_id": door.extra["door_id"], "direction": direction, "credential_type": cred,
                       "result": result, "deny_reason": deny}
        pk = person.pk if person is not None and not forced else None
        return self.ev(rng, "access", door.version, door.device_id, door.location, pk, ls, payload)

    def gen_access(self, c: Centre, t0: int, t1: int, rng: random.Random) -> list[Event]:
        out: list[Event] = []
        for m0, m1, ph in self._minutes(t0, t1):
            frac = (m1 - m0) / 3600
            n_det = _poisson(rng, ph.access * len(c.persons) * frac)
            n_staff = _poisson(rng, ph.staff * c.staff * frac)
            visiting = 9 <= (m0 % DAY_S) // 3600 < 16 and _weekday(m0 // DAY_S) < 5
            n_vis = _poisson(rng, 0.05 * c.staff * frac) if visiting else 0
            for holder, n in (("detainee", n_det), ("staff", n_staff), ("visitor", n_vis)):
                for _ in range(n):
                    ls = rng.randrange(m0, m1)
                    person = None
                    if holder == "detainee":
                        person = rng.choice(c.persons)
                        unit = c.unit_by_code[person.unit]
                        door = rng.choice(unit.doors) if rng.random() < 0.6 else rng.choice(c.facility_doors)
                    elif holder == "visitor":
                        door = c.facility_doors[0]
                    else:
                        door = rng.choice(c.doors)
                    u = rng.random()
                    result = ("granted" if u < 0.972 else "denied" if u < 0.994
                              else "held_open" if u < 0.998 else "forced_open")
                    if not self.is_silent(door.device_id, ls):
                        out.append(self.access_event(rng, c, ls, door, holder, person, result))
        return out

    def alarm_events(self, rng: random.Random, c: Centre, device: Device, ls: int, alarm_type: str,
                     person_pk: str | None = None, severity: int | None = None) -> list[Event]:
        """Raised, acknowledged and cleared events of one alarm (the later ones may fall in later batches)."""
        sev = severity or {"emergency_button": 3, "duress": 4, "fire_smoke": 4, "intrusion": 4, "tamper": 2,
                           "device_fault": 1, "power_loss": 2}[alarm_type]
        ref = f"ALR-{c.code}-{ls}-{rng.getrandbits(16):04X}"
        unit = c.unit_by_code.get(device.location.get("unit") or "")
        officers = unit.officers if unit else [c.control_officer]
        officer = rng.choice(officers)
        ack = ls + rng.randint(15, 240 if sev >= 3 else 900)
        clear = ack + rng.randint(60, 1800)
        out = []
        for state, t, op in (("raised", ls, None), ("acknowledged", ack, officer), ("cleared", clear, officer)):
            payload = {"alarm_ref": ref, "alarm_type": alarm_type, "state": state, "severity": sev,
                       "linked_camera_id": device.extra.get("camera"), "operator_code": op}
            out.append(self.ev(rng, "alarm", "1.0", device.device_id, device.location, person_pk, t, payload))
        return out

    def gen_alarm(self, c: Centre, t0: int, t1: int, rng: random.Random) -> list[Event]:
        out: list[Event] = []
        rooms = [d for d in c.alarms if "room" in d.extra]
        duty = [d for d in c.alarms if d.device_id.endswith("-DUTY")]
        sources = (
            (rooms, "emergency_button", 0.0015), (c.alarms, "device_fault", 0.001), (c.alarms, "tamper", 0.0003),
            (rooms + c.alarms[-1:], "fire_smoke", 0.0002), (duty, "duress", 0.0002),
            (c.alarms[-2:-1], "power_loss", 0.002),
        )
        for m0, m1, ph in self._minutes(t0, t1):
            frac = (m1 - m0) / 3600
            for devices, alarm_type, rate in sources:
                for _ in range(_poisson(rng, rate * ph.alarm * len(devices) * frac)):
                    d = rng.choice(devices)
                    ls = rng.randrange(m0, m1)
                    if self.is_silent(d.device_id, ls):
                        continue
                    pk = None
                    if alarm_type == "emergency_button" and rng.random() < 0.3:
                        occupants = self._occupants(c, d.extra["room"])
                        pk = rng.choice(occupants).pk if occupants else None
                    out += self.alarm_events(rng, c, d, ls, alarm_type, pk)
        return out

    @staticmethod
    def _occupants(c: Centre, room: str) -> list[Person]:
        return c.room_occupants.get(room, [])

    def wind(self, c: Centre, ls: int) -> float:
        day = ls // DAY_S
        key = (c.code, day)
        if key not in self._wind:
            rng = random.Random(f"{self.seed}|wind|{c.code}|{day}")
            base = rng.uniform(0.5, 7.0)
            self._wind[key] = [round(max(0.0, base * (1 + 0.5 * math.sin((h - 8) / 24 * 2 * math.pi))
                                         + rng.gauss(0, 1)), 1) for h in range(24)]
        return self._wind[key][(ls % DAY_S) // 3600]

    def perimeter_events(self, rng: random.Random, c: Centre, seg: Device, ls: int, event_type: str,
                         real: bool = False) -> list[Event]:
        """One perimeter event and its restored follow-up."""
        hv = seg.extra["sensor"] == "hv_fence"
        volts = round(rng.uniform(2.0, 6.0) if event_type == "voltage_drop" else rng.uniform(8.5, 10.0), 2) if hv else None
        conf = round(rng.uniform(0.7, 0.99) if real else rng.uniform(0.05, 0.6), 2)
        wind = self.wind(c, ls)
        out = []
        for etype, t in ((event_type, ls), ("restored", ls + rng.randint(30, 900))):
            payload = {"segment_id": seg.extra["segment"], "sensor_type": seg.extra["sensor"], "event_type": etype,
                       "confidence": conf if etype != "restored" else 1.0,
                       "voltage_kv": volts if etype != "restored" or not hv else round(rng.uniform(8.5, 10.0), 2),
                       "wind_speed_ms": wind}
            out.append(self.ev(rng, "perimeter", "1.0", seg.device_id, seg.location, None, t, payload))
        return out

    def gen_perimeter(self, c: Centre, t0: int, t1: int, rng: random.Random) -> list[Event]:
        out: list[Event] = []
        hv = [s for s in c.segments if s.extra["sensor"] == "hv_fence"]
        for m0, m1, ph in self._minutes(t0, t1):
            frac = (m1 - m0) / 3600
            night = 1.6 if ph.name in _NIGHT_PHASES else 1.0
            wind = 1 + self.wind(c, m0) / 8
            for devices, etype, rate in ((c.segments, "intrusion", 0.012 * night * wind),
                                         (c.segments, "fault", 0.002), (c.segments, "tamper", 0.0004),
                                         (hv, "voltage_drop", 0.004)):
                for _ in range(_poisson(rng, rate * len(devices) * frac)):
                    seg = rng.choice(devices)
                    ls = rng.randrange(m0, m1)
                    if not self.is_silent(seg.device_id, ls):
                        out += self.perimeter_events(rng, c, seg, ls, etype)
        return out

    def intercom_event(self, rng: random.Random, c: Centre, term: Device, ls: int, direction: str,
                       call_type: str, person_pk: str | None = None) -> Event:
        answered = call_type in ("emergency", "broadcast") or rng.random() < 0.97
        unit = c.unit_by_code[term.extra["unit"]]
        payload = {"call_id": f"CALL-{c.code}-{ls}-{rng.getrandbits(16):04X}", "direction": direction,
                   "call_type": call_type, "answered": answered,
                   "ring_s": rng.randint(1, 25) if answered else rng.randint(30, 60),
                   "talk_s": (rng.randint(10, 240) if call_type != "broadcast" else rng.randint(20, 90)) if answered else 0,
                   "operator_code": rng.choice(unit.officers)}
        return self.ev(rng, "intercom", "1.0", term.device_id, term.location, person_pk, ls, payload)

    def gen_intercom(self, c: Centre, t0: int, t1: int, rng: random.Random) -> list[Event]:
        out: list[Event] = []
        for m0, m1, ph in self._minutes(t0, t1):
            frac = (m1 - m0) / 3600
            for _ in range(_poisson(rng, ph.intercom * len(c.intercoms) * frac)):
                term = rng.choice(c.intercoms)
                ls = rng.randrange(m0, m1)
                if self.is_silent(term.device_id, ls):
                    continue
                if rng.random() < 0.75:
                    call_type = rng.choices(("routine", "help", "medical"), (78, 17, 5))[0]
                    occupants = self._occupants(c, term.extra["room"])
                    pk = rng.choice(occupants).pk if occupants and rng.random() < 0.6 else None
                    out.append(self.intercom_event(rng, c, term, ls, "room_to_duty", call_type, pk))
                else:
                    out.append(self.intercom_event(rng, c, term, ls, "duty_to_room", "routine"))
            for _ in range(_poisson(rng, 0.2 * len(c.duty_intercoms) * frac)):
                term = rng.choice(c.duty_intercoms)
                ls = rng.randrange(m0, m1)
                if not self.is_silent(term.device_id, ls):
                    out.append(self.intercom_event(rng, c, term, ls, "duty_to_duty", "routine"))
            # Wake-up and lights-out broadcasts from every duty desk.
            if (m0 % DAY_S) in (6 * 3600, 21 * 3600 + 1800):
                for term in c.duty_intercoms:
                    if not self.is_silent(term.device_id, m0):
                        out.append(self.intercom_event(rng, c, term, m0, "broadcast", "broadcast"))
        return out

    def video_event(self, rng: random.Random, cam: Device, ls: int, behaviour: str, person_pk: str | None = None,
                    headcount: int | None = None, expected: int | None = None, conf: float | None = None) -> Event:
        duration = None
        if behaviour in ("toilet_area_entry", "loitering_near_wall", "crowd_gathering"):
            duration = float(rng.randint(20, 600))
        track = f"TRK-{rng.getrandbits(32):08X}" if behaviour in ("tripwire_crossing", "trajectory",
                                                                   "sudden_running", "loitering_near_wall") else None
        payload = {"camera_id": cam.device_id, "behaviour": behaviour,
                   "confidence": conf if conf is not None else round(rng.uniform(0.55, 0.99), 2),
                   "headcount": headcount, "expected_headcount": expected, "duration_s": duration, "track_id": track,
                   "snapshot_ref": f"snap://{cam.device_id}/{self.clock.compact(ls, seconds=True)}"}
        return self.ev(rng, "video_analytics", "1.0", cam.device_id, cam.location, person_pk, ls, payload)

    def gen_video(self, c: Centre, t0: int, t1: int, rng: random.Random) -> list[Event]:
        out: list[Event] = []
        cams = c.cameras
        for m0, m1, ph in self._minutes(t0, t1):
            frac = (m1 - m0) / 3600
            night = ph.name in _NIGHT_PHASES
            meal = ph.place == "canteen"
            day_out = ph.place in ("block", "canteen", "corridor")
            groups = (
                (cams["room"], "toilet_area_entry", 0.6 if night else 0.1),
                (cams["room"], "crowd_gathering", 0.004 * ph.video), (cams["room"], "sudden_running", 0.003 * ph.video),
                (cams["room"], "fall", 0.0008), (cams["corridor"], "tripwire_crossing", 0.25 * ph.video),
                (cams["corridor"], "trajectory", 0.1 * ph.video), (cams["corridor"], "sudden_running", 0.005 * ph.video),
                (cams["canteen"], "crowd_gathering", 0.3 if meal else 0.01),
                (cams["yard"], "loitering_near_wall", 0.05 if day_out else 0.0),
                (cams["perimeter"], "loitering_near_wall", 0.02 if day_out else 0.005),
                (cams["perimeter"], "tripwire_crossing", 0.01),
            )
            for devices, behaviour, rate in groups:
                for _ in range(_poisson(rng, rate * len(devices) * frac)):
                    cam = rng.choice(devices)
                    ls = rng.randrange(m0, m1)
                    if self.is_silent(cam.device_id, ls):
                        continue
                    pk, count = None, None
                    if "room" in cam.extra:
                        occupants = self._occupants(c, cam.extra["room"])
                        if behaviour in ("toilet_area_entry", "fall") and occupants and rng.random() < 0.5:
                            pk = rng.choice(occupants).pk
                    if behaviour == "crowd_gathering":
                        count = rng.randint(4, 9 if "room" in cam.extra else 30)
                    out.append(self.video_event(rng, cam, ls, behaviour, pk, headcount=count))
        return out

    # -- feeds: scheduled per centre-day ---------------------------------------------------------
    def _daily(self, feed: str, c: Centre, day: int) -> list[Event]:
        key = (feed, c.code, day)
        if key not in self._day_cache:
            rng = random.Random(f"{self.seed}|{feed}|{c.code}|day{day}")
            builder = {"attendance": self._day_attendance, "behaviour_score": self._day_scores,
                       "patrol": self._day_patrol, "video_analytics": self._day_headcounts}[feed]
            events = builder(c, day, rng)
            # Planted events (incidents, warnings, precursors) join the cache of the day they happen on.
            events += [e for e in self.planted[c.code].get(feed, ()) if e[0] // DAY_S == day]
            events = [e for e in events if not self.is_silent(e[1]["device_id"], e[0])]
            events.sort(key=lambda e: e[0])
            self._day_cache[key] = events
        return self._day_cache[key]

    def _day_attendance(self, c: Centre, day: int, rng: random.Random) -> list[Event]:
        out: list[Event] = []
        day0 = day * DAY_S
        weekday = _weekday(day)
        stamp = self.clock.compact(day0)[:8]
        for block, (b0, b1) in BLOCKS.items():
            start, end = day0 + b0 * 60, day0 + b1 * 60
            for unit in c.units:
                activity = block_activity(unit.zone, weekday, block)
                if activity is None:
                    continue
                term = c.attendance_terminals[_ACTIVITY_ROOM[activity]]
                session = f"{c.code}-{_ACTIVITY_CODE[activity]}-{stamp}-{block}-{unit.code}"
                base = {"session_id": session, "activity": activity, "scheduled_start": self.clock.ts(start),
                        "scheduled_end": self.clock.ts(end)}
                for p in unit.persons:
                    if rng.random() < 0.02:
                        continue  # absent (sick, visit, interview)
                    method = "face" if rng.random() < 0.85 else "card"
                    t_in = start + rng.randint(-600, 300)
                    out.append(self.ev(rng, "attendance", "1.0", term.device_id, term.location, p.pk, t_in,
                                       {**base, "action": "check_in", "method": method}))
                    if rng.random() < 0.99:
                        t_out = end + rng.randint(-300, 600)
                        out.append(self.ev(rng, "attendance", "1.0", term.device_id, term.location, p.pk, t_out,
                                           {**base, "action": "check_out", "method": method}))
        return out

    def _day_scores(self, c: Centre, day: int, rng: random.Random) -> list[Event]:
        out: list[Event] = []
        day0 = day * DAY_S
        score_date = (_EPOCH_DATE + timedelta(days=day)).isoformat()
        adhoc = (("deduction", 0.03, (-5, -1), ("rule_compliance", "rehab_labour", "education")),
                 ("bonus", 0.03, (1, 3), ("education", "rehab", "rehab_labour")),
                 ("penalty", 0.003, (-10, -6), ("rule_compliance",)),
                 ("outstanding", 0.002, (5, 8), ("rule_compliance", "rehab")),
                 ("bonus", 0.0005, (3, 5), ("confession",)))
        for unit in c.units:
            term = c.score_terminals[unit.code]
            for p in unit.persons:
                officer = rng.choice(unit.officers)
                for entry, prob, (lo, hi), dims in adhoc:
                    if rng.random() < prob:
                        t = day0 + rng.randint(8 * 3600, 19 * 3600)
                        out.append(self.ev(rng, "behaviour_score", "1.0", term.device_id, term.location, p.pk, t, {
                            "score_date": score_date, "entry_type": entry, "dimension": rng.choice(dims),
                            "points": float(rng.randint(lo, hi)), "reason_code": f"R{rng.randint(1, 60):03d}",
                            "officer_code": officer}))
                points = rng.choices((2.0, 1.0, 0.0), (90, 8, 2))[0]
                t = day0 + 20 * 3600 + rng.randint(0, 2700)
                out.append(self.ev(rng, "behaviour_score", "1.0", term.device_id, term.location, p.pk, t, {
                    "score_date": score_date, "entry_type": "daily", "dimension": "rule_compliance",
                    "points": points, "reason_code": None, "officer_code": officer}))
        return out

    def _day_patrol(self, c: Centre, day: int, rng: random.Random) -> list[Event]:
        out: list[Event] = []
        skipped_rounds: dict[str, bool] = {}
        skip_round, miss, late = PATROL_GAP
        for row in _plan_day(c, day, self.clock):
            rid = row["round_id"]
            # A tense unit's rounds are skipped, cut short and late more often (precursors).
            level = self.levels.get((c.code, row["unit"], day), 0.0) if row["unit"] else 0.0
            if rid not in skipped_rounds:
                skipped_rounds[rid] = rng.random() < 0.02 + skip_round * level
            if skipped_rounds[rid] or rng.random() < 0.03 + miss * level:
                continue
            dev = c.patrol_devices[row["route_id"].split("-", 1)[1]]
            deviation = int(_clamp(rng.gauss(45, 90), -300, 1800))
            if level and rng.random() < late * level:
                deviation = min(1800, deviation + rng.randint(300, 1500))
            ls = row["planned_ls"] + deviation
            loc = {**dev.location, "room": f"{row['unit'] or 'PER'}-CP{row['sequence']:02d}"}
            out.append(self.ev(rng, "patrol", "1.0", dev.device_id, loc, None, ls, {
                "route_id": row["route_id"], "round_id": rid, "checkpoint_id": row["checkpoint_id"],
                "sequence": row["sequence"], "planned_time": self.clock.ts(row["planned_ls"]),
                "deviation_s": deviation, "officer_code": row["officer_code"],
                "scan_method": "rfid" if c.index % 2 else "nfc"}))
        return out

    def _day_headcounts(self, c: Centre, day: int, rng: random.Random) -> list[Event]:
        out: list[Event] = []
        for hh, mm in ((6, 5), (12, 35), (21, 35), (0, 0), (3, 0)):
            t = day * DAY_S + hh * 3600 + mm * 60
            for cam in c.cameras["room"]:
                expected = len(self._occupants(c, cam.extra["room"]))
                count = expected if rng.random() < 0.985 else max(0, expected + rng.choice((-1, 1)))
                out.append(self.video_event(rng, cam, t + rng.randint(0, 59), "headcount", headcount=count,
                                            expected=expected, conf=round(rng.uniform(0.9, 0.99), 2)))
        return out

    # -- incidents ------------------------------------------------------------------------------------
    def _make_incident(self, c: Centre, planned: incident_plan.PlannedIncident) -> _Incident:
        """The burst of correlated events of one planned incident, by its kind's signature."""
        rng = random.Random(f"{self.seed}|incident|{planned.incident_id}")
        sig = planned.signature
        start = planned.day * DAY_S + planned.minute * 60
        end = start + (rng.randint(60 * 60, 180 * 60) if sig == "quiet" else rng.randint(15 * 60, 40 * 60))
        unit = c.unit_by_code[planned.unit]
        room = rng.choice(unit.rooms)
        pool = unit.occupants[room] if planned.persons <= 4 and len(unit.occupants[room]) >= planned.persons \
            else unit.persons
        involved = rng.sample(pool, min(len(pool), planned.persons))
        inc = _Incident(incident_id=planned.incident_id, centre=c.code, kind=planned.kind,
                        incident_type=planned.incident_type, start=start, end=end, unit=unit.code, room=room,
                        persons=[p.pk for p in involved])
        if planned.warning_minutes is not None:
            inc.warning_start = start - planned.warning_minutes * 60
        ev: dict[str, list[Event]] = {}

        def add(feed: str, events: Iterable[Event]) -> None:
            ev.setdefault(feed, []).extend(events)

        def t_in(a: int, b: int) -> int:
            return start + rng.randint(a, b)

        def scores(entry: str, lo: int, hi: int) -> None:
            term = c.score_terminals[unit.code]
            score_t = end + rng.randint(3600, 3 * 3600)
            add("behaviour_score", [self.ev(rng, "behaviour_score", "1.0", term.device_id, term.location, p.pk,
                                            score_t + i, {
                                                "score_date": self.clock.date_of(start).isoformat(),
                                                "entry_type": entry, "dimension": "rule_compliance",
                                                "points": float(-rng.randint(lo, hi)), "reason_code": "R099",
                                                "officer_code": rng.choice(unit.officers)})
                                    for i, p in enumerate(involved)])

        def staff_in(n_lo: int, n_hi: int, doors: Sequence[Device]) -> None:
            add("access", [self.access_event(rng, c, t_in(60, 600), rng.choice(doors), "staff", None, direction="in")
                           for _ in range(rng.randint(n_lo, n_hi))])

        room_cam = next(d for d in c.cameras["room"] if d.extra["room"] == room)
        cor_cam = next(d for d in c.cameras["corridor"] if d.extra["unit"] == unit.code)
        alarm = next(d for d in c.alarms if d.extra.get("room") == room)
        term = next(d for d in c.intercoms if d.extra["room"] == room)
        first_pk = involved[0].pk if involved else None
        override = None
        if sig == "fight":
            big = planned.persons > 4
            add("video_analytics", [self.video_event(rng, rng.choice((room_cam, cor_cam)), t_in(0, 600),
                                                     "crowd_gathering", headcount=rng.randint(4, 10 if not big else 30))
                                    for _ in range(rng.randint(3, 6) * (2 if big else 1))])
            add("video_analytics", [self.video_event(rng, cor_cam, t_in(0, 600), "sudden_running")
                                    for _ in range(rng.randint(2, 4))])
            add("alarm", self.alarm_events(rng, c, alarm, t_in(30, 120), "emergency_button"))
            if big or planned.kind in ("assault_on_officer", "criminal_case"):
                duty = next(d for d in c.alarms if d.device_id == f"{c.code}-ALM-{unit.code}-DUTY")
                add("alarm", self.alarm_events(rng, c, duty, t_in(10, 90), "duress"))
            add("intercom", [self.intercom_event(rng, c, term, t_in(20, 300), "room_to_duty", "emergency")
                             for _ in range(rng.randint(1, 3))])
            staff_in(4 * (2 if big else 1), 10 * (2 if big else 1), unit.doors)
            scores("serious_violation", 20, 50)
            override = "agitation"
        elif sig == "medical":
            add("video_analytics", [self.video_event(rng, room_cam, t_in(0, 60), "fall", first_pk)])
            add("alarm", self.alarm_events(rng, c, alarm, t_in(30, 180), "emergency_button", first_pk))
            add("intercom", [self.intercom_event(rng, c, term, t_in(10, 240), "room_to_duty", "medical", first_pk)
                             for _ in range(rng.randint(1, 2))])
            clinic = next(d for d in c.facility_doors if d.extra["door_id"].endswith("CLINIC"))
            add("access", [self.access_event(rng, c, t_in(120, 900), rng.choice((clinic, *unit.doors)), "staff",
                                             None) for _ in range(rng.randint(2, 4))])
            override = "medical"
        elif sig == "perimeter":
            k = rng.randrange(len(c.segments))
            segs = [c.segments[(k + d) % len(c.segments)] for d in (-1, 0, 1)]
            inc.room = segs[1].location["room"]
            cams = [c.cameras["perimeter"][(k + d) % len(c.segments)] for d in (-1, 0, 1)]
            for _ in range(rng.randint(5, 12)):
                add("perimeter", self.perimeter_events(rng, c, rng.choice(segs), t_in(0, 900), "intrusion", real=True))
            add("video_analytics", [self.video_event(rng, rng.choice(cams), t_in(0, 900), "loitering_near_wall")
                                    for _ in range(rng.randint(2, 5))])
            add("video_analytics", [self.video_event(rng, rng.choice(cams), t_in(0, 900), "tripwire_crossing")
                                    for _ in range(rng.randint(1, 3))])
            ctrl = next(d for d in c.alarms if d.device_id.endswith("-CTRL"))
            add("alarm", self.alarm_events(rng, c, ctrl, t_in(10, 60), "intrusion"))
            add("access", [self.access_event(rng, c, t_in(0, 60), rng.choice(unit.doors), "detainee", None,
                                             "forced_open", "out")])
            override = "agitation"
        elif sig == "search":
            staff_in(4, 8, unit.doors)
            add("video_analytics", [self.video_event(rng, cor_cam, t_in(0, 900), "trajectory")
                                    for _ in range(rng.randint(1, 3))])
            add("access", [self.access_event(rng, c, t_in(0, 900), rng.choice(unit.doors), "detainee", p, "denied")
                           for p in involved])
            scores("serious_violation", 20, 50)
        elif sig == "fire":
            add("alarm", self.alarm_events(rng, c, alarm, t_in(0, 60), "fire_smoke"))
            add("video_analytics", [self.video_event(rng, cor_cam, t_in(30, 600), rng.choice(
                ("crowd_gathering", "sudden_running"))) for _ in range(rng.randint(2, 4))])
            add("intercom", [self.intercom_event(rng, c, term, t_in(10, 200), "room_to_duty", "emergency")
                             for _ in range(rng.randint(1, 2))])
            staff_in(4, 8, unit.doors)
        else:  # quiet: a hunger strike, known from calls and the score book
            add("intercom", [self.intercom_event(rng, c, term, t_in(0, 1800), "room_to_duty", "help", first_pk)
                             for _ in range(rng.randint(1, 2))])
            scores("penalty", 6, 10)
        inc.vitals = override
        inc.events = ev
        return inc

    def _warning(self, c: Centre, unit: Unit, inc: _Incident) -> dict[str, list[Event]]:
        """The short warning some incidents give: a few unit events in the hours before the incident."""
        rng = random.Random(f"{self.seed}|warning|{inc.incident_id}")
        w0 = inc.warning_start if inc.warning_start is not None else inc.start
        ev: dict[str, list[Event]] = {}
        cams = [d for d in c.cameras["room"] if d.location["unit"] == unit.code] + [
            d for d in c.cameras["corridor"] if d.extra["unit"] == unit.code]
        terms = [d for d in c.intercoms if d.location["unit"] == unit.code]
        for _ in range(rng.randint(2, 5)):
            t = rng.randrange(w0, inc.start)
            what = rng.randrange(4)
            if what == 0:
                ev.setdefault("video_analytics", []).append(self.video_event(
                    rng, rng.choice(cams), t, "crowd_gathering", headcount=rng.randint(4, 9)))
            elif what == 1:
                ev.setdefault("video_analytics", []).append(self.video_event(rng, rng.choice(cams), t, "sudden_running"))
            elif what == 2:
                ev.setdefault("intercom", []).append(self.intercom_event(rng, c, rng.choice(terms), t, "room_to_duty",
                                                                         "help"))
            else:
                p = rng.choice(unit.persons) if unit.persons else None
                ev.setdefault("access", []).append(self.access_event(
                    rng, c, t, rng.choice(unit.doors), "detainee" if p else "staff", p, "denied"))
        return ev

    # -- batches --------------------------------------------------------------------------------------
    def delivered_at(self, k: int) -> int:
        return min(self.start + (k + 1) * self.batch_s, self.end)

    def run(self) -> dict[str, Any]:
        generators = {"vitals": self.gen_vitals, "access": self.gen_access, "alarm": self.gen_alarm,
                      "perimeter": self.gen_perimeter, "intercom": self.gen_intercom, "video_analytics": self.gen_video}
        daily = ("attendance", "behaviour_score", "patrol", "video_analytics")
        # Planted events of feeds without a daily builder go through the pending queue.
        for planted in self.planted.values():
            for feed, events in planted.items():
                if feed in daily or feed not in self.feeds:
                    continue
                for ls, e in sorted(events, key=lambda ev: ev[0]):
                    if not self.is_silent(e["device_id"], ls):
                        self._route(-1, feed, ls, e, {})
        for k in range(self.n_batches):
            t0, t1 = self.start + k * self.batch_s, self.delivered_at(k)
            current: dict[str, list[Event]] = {f: [] for f in self.feeds}
            for feed, events in self.pending.pop(k, {}).items():
                current[feed] += events
            for c in self.topo.centres:
                for feed in self.feeds:
                    gen = generators.get(feed)
                    if gen is not None:
                        rng = random.Random(f"{self.seed}|{feed}|{c.code}|{t0}")
                        for ls, e in gen(c, t0, t1, rng):
                            self._route(k, feed, ls, e, current)
                    if feed in daily:
                        # The previous day's schedule can spill past midnight (late night patrol scans).
                        for day in range(t0 // DAY_S - 1, (t1 - 1) // DAY_S + 1):
                            events = self._daily(feed, c, day)
                            lo = bisect.bisect_left(events, t0, key=lambda ev: ev[0])
                            hi = bisect.bisect_left(events, t1, key=lambda ev: ev[0])
                            current[feed] += events[lo:hi]
            for key in [key for key in self._day_cache if key[2] < t0 // DAY_S - 1]:
                del self._day_cache[key]
            for feed in self.feeds:
                events = current[feed]
                events.sort(key=lambda e: e[0])
                self.generated[feed] += len(events)
                for _, e in events:
                    v = e["contract_version"]
                    self.versions[feed][v] = self.versions[feed].get(v, 0) + 1
                self._deliver(k, feed, events)
        return self._finish()

    def _route(self, k: int, feed: str, ls: int, e: dict[str, Any], current: dict[str, list[Event]]) -> None:
        if ls < self.start:
            return
        idx = (ls - self.start) // self.batch_s
        if idx == k:
            current[feed].append((ls, e))
        elif idx >= self.n_batches:
            self.dropped_after_window += 1
        elif idx > k:
            self.pending.setdefault(idx, {}).setdefault(feed, []).append((ls, e))
        else:  # pragma: no cover - generators never go back in time
            raise AssertionError(f"{feed} event at {ls} generated after its batch")

    # -- flaws and delivery -------------------------------------------------------------------------
    def _flaw(self, u: float) -> str | None:
        for threshold, kind in self._thresholds:
            if u < threshold:
                return kind
        return None

    def _malform(self, kind: str, e: dict[str, Any], line: str, k: int, rng: random.Random) -> tuple[str, str]:
        """A corrupted line of ``kind`` and the reason check_event must give it."""
        if kind == "invalid_json":
            variant = rng.randrange(3)
            if variant == 0:
                return line[: rng.randint(1, len(line) - 2)], "invalid_json"
            if variant == 1:
                return repr(e), "invalid_json"  # a producer writing a Python dict repr
            return line[:-1] + ',"note":"\udcb4\udced"}', "invalid_json"  # GBK bytes, not UTF-8
        if kind == "not_an_object":
            return "[" + line + "]", "not_an_object"
        if kind == "missing_event_id":
            bad = dict(e)
            if rng.random() < 0.5:
                del bad["event_id"]
            else:
                bad["event_id"] = ""
            return _encode(bad), "missing_event_id"
        if kind == "unknown_feed":
            return _encode({**e, "feed": rng.choice((f"{e['feed']}_legacy", "cctv_raw"))}), "unknown_feed"
        if kind == "wrong_version":
            return _encode({**e, "contract_version": rng.choice(_WRONG_VERSIONS)}), "unknown_contract_version"
        if kind == "future_timestamp":
            ahead = rng.randint(int(FUTURE_TOLERANCE.total_seconds()) + 300, 48 * 3600)
            return _encode({**e, "event_time": self.clock.ts(self.delivered_at(k) + ahead)}), "future_timestamp"
        # schema_violation: exactly one field broken.
        variant = rng.randrange(3)
        if variant == 0:
            return _encode({**e, "location": {**e["location"], "centre": "XX99"}}), "schema_violation:location.centre"
        if variant == 1:
            return _encode({**e, "person_pk": "not-a-pseudonym"}), "schema_violation:person_pk"
        field_name, value = {
            "vitals": ("heart_rate", 999), "access": ("direction", "sideways"), "alarm": ("severity", 9),
            "perimeter": ("confidence", 1.7), "patrol": ("sequence", 0), "intercom": ("ring_s", -5),
            "video_analytics": ("confidence", 2.5), "behaviour_score": ("points", 500.0),
            "attendance": ("action", "teleport"),
        }[e["feed"]]
        return _encode({**e, "payload": {**e["payload"], field_name: value}}), f"schema_violation:payload.{field_name}"

    def _oversize_line(self, k: int, rng: random.Random) -> tuple[int, str, str]:
        c = self.topo.centres[rng.randrange(len(self.topo.centres))]
        cam = rng.choice(c.cameras["room"])
        ls = self.start + k * self.batch_s + rng.randrange(max(1, self.delivered_at(k) - self.start - k * self.batch_s))
        _, e = self.video_event(rng, cam, ls, "fall")
        blob = "A" * self.flaws.oversize_bytes  # stands in for an inline base64 snapshot
        return ls, _encode({**e, "payload": {**e["payload"], "snapshot_b64": blob}}), e["event_id"]

    def _deliver(self, k: int, feed: str, events: list[Event]) -> None:
        rng = random.Random(f"{self.seed}|flaws|{feed}|{self.start + k * self.batch_s}")
        # entries: [ls, line, event_id, malformed record or None, out_of_order flag]
        entries: list[list[Any]] = []
        late_lo, late_hi = math.log(self.flaws.late_min_s), math.log(self.flaws.late_max_s)
        for ls, e in events:
            line = _encode(e)
            eid = e["event_id"]
            kind = self._flaw(rng.random()) if self._thresholds[-1][0] > 0 else None
            if kind is None:
                entries.append([ls, line, eid, None, False])
                self.valid[feed] += 1
            elif kind == "duplicate":
                entries.append([ls, line, eid, None, False])
                self.valid[feed] += 1
                m = min(k + rng.randint(0, 2), self.n_batches - 1)
                self.carry.setdefault((m, feed), []).append((ls, line, eid))
                self.m_duplicates.append(eid)
            elif kind == "late":
                delay = math.exp(rng.uniform(late_lo, late_hi))
                m = min(k + max(1, math.ceil(delay / self.batch_s)), self.n_batches - 1)
                self.valid[feed] += 1
                if m <= k:  # no later batch in the window to be late into
                    entries.append([ls, line, eid, None, False])
                    continue
                self.carry.setdefault((m, feed), []).append((ls, line, eid))
                self.m_late.append({"event_id": eid, "event_time": e["event_time"],
                                    "delivered_at": self.clock.ts(self.delivered_at(m)),
                                    "delay_s": self.delivered_at(m) - ls})
            elif kind == "out_of_order":
                entries.append([ls, line, eid, None, True])
                self.valid[feed] += 1
            else:
                bad, reason = self._malform(kind, e, line, k, rng)
                entries.append([ls, bad, eid, {"kind": kind, "reason": reason, "event_id": eid}, False])
        # Out of order: move a flagged line a few places later, behind events that happened after it.
        for entry in [x for x in entries if x[4]]:
            i = next(n for n, x in enumerate(entries) if x is entry)
            j = min(len(entries) - 1, i + rng.randint(2, 20))
            if j > i:
                entries.insert(j, entries.pop(i))
        # Late and re-sent lines arrive after this batch's own lines.
        for ls, line, eid in self.carry.pop((k, feed), []):
            entries.append([ls, line, eid, None, False])
        if feed == "video_analytics" and k in self._oversize_at:
            for _ in range(self._oversize_at[k]):
                ls, line, eid = self._oversize_line(k, rng)
                entries.append([ls, line, eid, {"kind": "oversize", "reason": "oversize", "event_id": eid}, False])
        if entries:
            self._write(k, feed, entries)

    def _write(self, k: int, feed: str, entries: list[list[Any]]) -> None:
        delivered = self.delivered_at(k)
        stamp = self.clock.compact(delivered)
        folder = self.landing / "feeds" / feed / stamp[:8]
        for seq, lo in enumerate(range(0, len(entries), self.max_lines)):
            chunk = entries[lo: lo + self.max_lines]
            name = f"{feed}_{stamp}_{seq:04d}.jsonl"
            rel = f"feeds/{feed}/{stamp[:8]}/{name}"
            latest = -1
            for n, (ls, _line, eid, bad, ooo) in enumerate(chunk, 1):
                if bad is not None:
                    self.m_malformed.append({**bad, "feed": feed, "path": rel, "line": n})
                elif ooo and latest > ls:
                    self.m_out_of_order.append({"event_id": eid, "path": rel, "line": n})
                if bad is None:
                    latest = max(latest, ls)
            data = ("\n".join(e[1] for e in chunk) + "\n").encode("utf-8", "surrogateescape")
            self.lines[feed] += len(chunk)
            self.m_files.append({"path": rel, "feed": feed, "delivered_at": self.clock.ts(delivered),
                                 "lines": len(chunk), "bytes": len(data)})
            if self.write:
                folder.mkdir(parents=True, exist_ok=True)
                _atomic_write(folder / name, data)

    def _finish(self) -> dict[str, Any]:
        flaw_counts = {"duplicate": len(self.m_duplicates), "late": len(self.m_late),
                       "out_of_order": len(self.m_out_of_order)}
        for kind in MALFORMED_KINDS:
            flaw_counts[kind] = sum(1 for m in self.m_malformed if m["kind"] == kind)
        c0 = self.clock
        incidents = []
        for inc in self.incidents:
            ids = {f: [e["event_id"] for ls, e in evs if not self.is_silent(e["device_id"], ls)
                       and ls < self.end] for f, evs in inc.events.items() if f in self.feeds}
            incidents.append({"incident_id": inc.incident_id, "centre": inc.centre, "kind": inc.kind,
                              "incident_type": inc.incident_type, "unit": inc.unit, "room": inc.room,
                              "start": c0.ts(inc.start), "end": c0.ts(inc.end),
                              "warning_start": None if inc.warning_start is None else c0.ts(inc.warning_start),
                              "persons": inc.persons, "event_ids": {f: v for f, v in ids.items() if v}})
        silent = [{"device_id": d, "start": c0.ts(s), "end": c0.ts(e)}
                  for d, spans in sorted(self.silent.items()) for s, e in spans]
        plan = _schedule(self.topo, self.start, self.end, self.clock) if "patrol" in self.feeds else []
        window = f"{c0.compact(self.start)}_{c0.compact(self.end)}"
        plan_rel = f"feeds/_plans/patrol_plan_{window}.jsonl" if plan else None
        manifest: dict[str, Any] = {
            "generator": "smartrehab.feeds.simulator",
            "seed": self.seed, "scale_factor": self.topo.scale_factor,
            "window_start": c0.ts(self.start), "window_end": c0.ts(self.end), "batch_minutes": self.batch_s // 60,
            "feeds": self.feeds, "centres": [c.code for c in self.topo.centres], "persons": len(self.topo.persons),
            "devices": {f: n for f, n in self.topo.device_counts().items() if f in self.feeds},
            "flaw_config": {k: v for k, v in asdict(self.flaws).items()},
            "counts": {"generated": self.generated, "valid_unique": self.valid, "lines": self.lines,
                       "versions": self.versions, "flaws": flaw_counts, "files": len(self.m_files),
                       "dropped_after_window": self.dropped_after_window, "patrol_planned": len(plan),
                       "incidents": len(incidents), "silent_devices": len(silent),
                       "precursor_unit_days": len(self.m_precursors)},
            "files": self.m_files,
            "duplicates": self.m_duplicates,
            "late": self.m_late,
            "out_of_order": self.m_out_of_order,
            "malformed": self.m_malformed,
            "silent_devices": silent,
            "incidents": incidents,
            "precursors": sorted(self.m_precursors, key=lambda r: (r["date"], r["centre"], r["unit"])),
            "patrol_plan": plan_rel,
            "manifest": f"feeds/_manifests/manifest_{window}.json",
        }
        if self.write:
            if plan_rel:
                data = "".join(_encode(r) + "\n" for r in plan).encode()
                (self.landing / plan_rel).parent.mkdir(parents=True, exist_ok=True)
                _atomic_write(self.landing / plan_rel, data)
            path = self.landing / manifest["manifest"]
            path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(path, json.dumps(manifest, indent=1).encode())
        return manifest


def _atomic_write(path: Path, data: bytes) -> None:
    """Write under a hidden temporary name in the same folder, then rename into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


# ---- public entry points --------------------------------------------------------------------------


def simulate(start: datetime, end: datetime, *, settings: Settings | None = None,
             persons: Sequence[str] | Mapping[str, str] | None = None, flaws: FlawConfig | None = None,
             feeds: Iterable[str] | None = None, batch_minutes: int = 15, incident_scale: float = 1.0,
             silent_device_rate: float = 0.02, max_lines_per_file: int = 200_000, write: bool = True,
             ) -> dict[str, Any]:
    """Simulate the feeds for ``[start, end)`` into ``<settings.landing_dir>/feeds/`` and return the manifest.

    Times are +08:00 (naive datetimes are taken as +08:00) and must be whole minutes. Events are delivered in
    batches of ``batch_minutes``; each (feed, batch) becomes one file named by its delivery time, split into
    ``_0000``, ``_0001``... beyond ``max_lines_per_file`` lines. Late and duplicate deliveries stay inside the
    window (a late event near the window's end is delivered in the last batch), so consecutive windows never
    write the same file and re-running a window rewrites identical files. Follow-up events that would fall after
    the window (an alarm cleared after ``end``) are dropped and counted.

    ``persons``: person_pk pseudonyms (list, spread over the centres), person_pk -> centre code, or person_pk ->
    :class:`~smartrehab.feeds.persons.Placement` (``legacy_persons``); by default derived from the seed.
    ``incident_scale`` multiplies the shared incident hazard: 1 gives exactly the legacy register's incidents,
    more adds incidents (every one of scale 1 stays), 0 none; precursors follow the tension whatever the scale. ``flaws``: flaw rates (:class:`FlawConfig`; ``FlawConfig.none()`` for clean data).
    ``write=False`` only computes the manifest.
    """
    s = settings or get_settings()
    start_ls, end_ls = _to_local_s(start), _to_local_s(end)
    if start_ls % 60 or end_ls % 60 or end_ls <= start_ls:
        raise ValueError("start and end must be whole minutes with start < end")
    if batch_minutes < 1:
        raise ValueError("batch_minutes must be at least 1")
    if incident_scale < 0:
        raise ValueError("incident_scale must be >= 0 (1 = the legacy register's incidents)")
    wanted = list(FEEDS) if feeds is None else list(feeds)
    unknown = set(wanted) - set(FEEDS)
    if unknown:
        raise ValueError(f"unknown feeds {sorted(unknown)}; choose from {FEEDS}")
    chosen = [f for f in FEEDS if f in wanted]
    flaws = flaws or FlawConfig()
    if flaws.oversize_messages and "video_analytics" not in chosen:
        raise ValueError("oversize messages are injected into the video_analytics feed: include it")
    sim = _Simulation(build_topology(s, persons), start_ls, end_ls, landing=Path(s.landing_dir), feeds=chosen,
                      flaws=flaws, batch_s=batch_minutes * 60,
                      incident_scale=incident_scale, silent_device_rate=silent_device_rate,
                      max_lines_per_file=max_lines_per_file, write=write)
    return sim.run()


def _parse_start(text: str) -> datetime:
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=CST)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m smartrehab.feeds.simulator --start 2026-11-28 --hours 24``."""
    ap = argparse.ArgumentParser(prog="python -m smartrehab.feeds.simulator", description=__doc__.split("\n")[0])
    ap.add_argument("--start", required=True, help="window start, ISO date or datetime (+08:00 when no offset)")
    ap.add_argument("--hours", type=float, default=24.0, help="window length in hours (default 24)")
    ap.add_argument("--feeds", default=",".join(FEEDS), help="comma-separated feeds (default all)")
    ap.add_argument("--batch-minutes", type=int, default=15)
    ap.add_argument("--no-flaws", action="store_true", help="clean data: no duplicates, late or malformed lines")
    ap.add_argument("--oversize", type=int, default=0, help="number of ~10 MB oversize messages to inject")
    ap.add_argument("--incident-scale", type=float, default=1.0,
                    help="multiplier of the shared incident hazard (default 1: the legacy register's incidents)")
    ap.add_argument("--silent-device-rate", type=float, default=0.02)
    ap.add_argument("--persons", choices=("legacy", "seed"), default="legacy",
                    help="legacy (default): the people held at the end of the legacy world, under the pseudonyms "
                         "silver.person has; seed: stand-alone pseudonyms derived from the seed")
    ap.add_argument("--legacy-as-of", default="2026-11-20", help="as `smartrehab generate --as-of` (default 2026-11-20)")
    ap.add_argument("--legacy-days", type=int, default=0, help="as `smartrehab generate --days` (default 0)")
    args = ap.parse_args(argv)
    start = _parse_start(args.start)
    end = start + timedelta(minutes=round(args.hours * 60))
    flaws = FlawConfig.none() if args.no_flaws else FlawConfig()
    if args.oversize:
        flaws = FlawConfig(**{**asdict(flaws), "oversize_messages": args.oversize})
    settings = get_settings()
    persons = None
    if args.persons == "legacy":
        from smartrehab.feeds.persons import legacy_persons

        persons = legacy_persons(settings, date.fromisoformat(args.legacy_as_of), args.legacy_days)
    t = time.perf_counter()
    manifest = simulate(start, end, settings=settings, persons=persons, flaws=flaws, feeds=args.feeds.split(","),
                        batch_minutes=args.batch_minutes, incident_scale=args.incident_scale,
                        silent_device_rate=args.silent_device_rate)
    elapsed = time.perf_counter() - t
    lines = sum(manifest["counts"]["lines"].values())
    print(json.dumps({"landing_dir": str(settings.landing_dir), "manifest": manifest["manifest"],
                      "scale_factor": manifest["scale_factor"], "persons": manifest["persons"],
                      "lines": lines, "files": manifest["counts"]["files"], "seconds": round(elapsed, 2),
                      "lines_per_second": round(lines / elapsed), "flaws": manifest["counts"]["flaws"]}, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
