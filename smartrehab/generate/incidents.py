"""The security story: a latent tension per unit and day, the incidents it causes, and how loud its precursors are.

One plan, read by the legacy incident register (AQ_SJDJ, ``smartrehab.generate.legacy``) and by the live-feed
simulator (``smartrehab.feeds.simulator``), so that a register entry and a burst of feed events are the same
incident, in the same unit at the same minute. See ``docs/synthetic-story.md`` (Security).

* **Tension** ``x`` of a unit on a day: an AR(1) with ``phi = 0.9`` and unit variance, written as the
  exponentially weighted sum of the unit's daily shocks over the last :data:`MEMORY_DAYS` days
  (``x_d = sqrt(1 - phi^2) * sum_k phi^k e_{d-k}``, shocks standard normal per (seed, centre, unit, day)).
  The truncation (0.9^81 ~ 2e-4) keeps every day a pure function of its key, whoever asks and from where.
  A tense spell lasts about a week or two (the correlation of two days a week apart is 0.9^7 = 0.48).
* **Incidents**: Poisson per unit-day with mean
  ``RATE_PER_100_BEDS x max(beds, BED_FLOOR) / 100 x exp(BETA x - BETA^2 / 2)`` with ``BETA = 1.5`` (the factor
  averages 1; a unit one standard deviation tenser than usual has 4.5 times the hazard), so
  about 0.05 recorded incidents per 100 beds a day (~160 a year in a 900-bed centre, most of them minor);
  the floor lets the tiny units of test worlds see some. The count is drawn by inverting the Poisson CDF at one
  uniform per unit-day, and each incident's details from its own key, so a larger ``scale`` only adds
  incidents: every incident of ``scale=1`` (the legacy register) is among them.
* **Kinds** (:data:`KINDS`): fights, disturbances, self-harm, contraband, attempted escapes, ... each with its
  legacy incident type (incident_type.csv), hours, severity and feed signature; the six 六无 types together
  are 1.2 % of incidents (about two a year in a 900-bed centre).
* **Precursors**: their intensity on a unit-day is :func:`precursor_level` ``= max(0, x - 0.25)`` (zero on
  about 60 % of days); half of the incidents also give a short warning in the hours before. Since incidents
  and precursors both follow the tension, precursors foretell incidents, but not all: an incident can strike
  on a calm day, and a tense spell can pass without one.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
import math
import operator
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from smartrehab.generate.estate import EstateUnit

PHI = 0.9
MEMORY_DAYS = 80
BETA = 1.5
RATE_PER_100_BEDS = 0.05
BED_FLOOR = 30
PRECURSOR_THRESHOLD = 0.25
WARNING_SHARE = 0.5
LIUWU_INCIDENT_TYPES = ("01", "02", "03", "04", "05", "06")
_EPOCH = date(1970, 1, 1)
_BLOCK = 64
_WEIGHTS = tuple(math.sqrt(1 - PHI * PHI) * PHI ** k for k in range(MEMORY_DAYS + 1))

DAY = tuple(range(7 * 60, 21 * 60 + 30))  # 07:00-21:30
NIGHT = tuple(range(22 * 60, 24 * 60)) + tuple(range(0, 6 * 60))
MEALS = tuple(range(6 * 60 + 30, 7 * 60 + 15)) + tuple(range(11 * 60 + 30, 12 * 60 + 30)) + tuple(
    range(17 * 60 + 15, 18 * 60 + 15))
OFFICE = tuple(range(8 * 60, 18 * 60))
ANY = tuple(range(24 * 60))


@dataclass(frozen=True)
class Kind:
    """One kind of incident: legacy type, share of incidents, when it happens, how bad, how it shows."""

    name: str
    incident_type: str   # incident_type.csv
    weight: float        # percent of incidents
    signature: str       # which burst the feeds show: fight | medical | perimeter | search | fire | quiet
    minutes: tuple[int, ...]
    night_share: float   # share drawn from NIGHT instead of ``minutes``
    severity: tuple[tuple[str, float], ...]  # incident_level.csv
    persons: tuple[int, int]
    detection: tuple[tuple[str, float], ...]  # incident_detection.csv
    deaths: int = 0


_FIGHT_DETECT = (("1", 50), ("3", 30), ("2", 20))
_MEDICAL_DETECT = (("4", 40), ("2", 35), ("6", 25))
_PERIMETER_DETECT = (("3", 60), ("1", 40))
_SEARCH_DETECT = (("5", 70), ("1", 15), ("7", 15))

KINDS: tuple[Kind, ...] = (
    Kind("fight", "14", 34.0, "fight", DAY, 0.0, (("1", 90), ("2", 10)), (2, 4), _FIGHT_DETECT),
    Kind("collective_disturbance", "18", 5.0, "fight", DAY, 0.0, (("1", 50), ("2", 45), ("3", 5)), (5, 15),
         _FIGHT_DETECT),
    Kind("assault_on_officer", "19", 3.0, "fight", DAY, 0.0, (("1", 40), ("2", 55), ("3", 5)), (1, 2),
         _FIGHT_DETECT),
    Kind("self_harm", "13", 12.0, "medical", ANY, 0.3, (("1", 80), ("2", 20)), (1, 1), _MEDICAL_DETECT),
    Kind("attempted_suicide", "12", 4.0, "medical", ANY, 0.6, (("2", 70), ("3", 30)), (1, 1), _MEDICAL_DETECT),
    Kind("hunger_strike", "20", 5.0, "quiet", MEALS, 0.0, (("1", 100),), (1, 3), (("2", 60), ("4", 40))),
    Kind("contraband", "15", 10.0, "search", OFFICE, 0.0, (("1", 95), ("2", 5)), (1, 2), _SEARCH_DETECT),
    Kind("attempted_escape", "11", 6.0, "perimeter", DAY, 0.7, (("2", 70), ("3", 30)), (1, 2), _PERIMETER_DETECT),
    Kind("fire", "17", 3.0, "fire", ANY, 0.2, (("1", 80), ("2", 20)), (0, 0), (("3", 80), ("1", 20))),
    Kind("other", "99", 16.8, "medical", ANY, 0.2, (("1", 100),), (1, 1), _MEDICAL_DETECT),
    # 六无 (counted against 安全六无): 1.2 % of incidents together.
    Kind("drugs_in", "01", 0.3, "search", OFFICE, 0.0, (("3", 80), ("4", 20)), (1, 3), _SEARCH_DETECT),
    Kind("escape", "02", 0.2, "perimeter", DAY, 0.7, (("3", 40), ("4", 60)), (1, 1), _PERIMETER_DETECT),
    Kind("abnormal_death", "03", 0.1, "medical", ANY, 0.6, (("3", 30), ("4", 70)), (1, 1), _MEDICAL_DETECT,
         deaths=1),
    Kind("criminal_case", "04", 0.3, "fight", DAY, 0.0, (("3", 80), ("4", 20)), (2, 3), _FIGHT_DETECT),
    Kind("production_accident", "05", 0.2, "medical", OFFICE, 0.0, (("3", 90), ("4", 10)), (1, 2),
         (("2", 60), ("6", 40))),
    Kind("epidemic", "06", 0.1, "medical", ANY, 0.0, (("3", 90), ("4", 10)), (3, 12), (("6", 100),)),
)
KIND_BY_NAME = {k.name: k for k in KINDS}
_KIND_CUM = tuple(itertools.accumulate(k.weight for k in KINDS))


@dataclass(frozen=True)
class PlannedIncident:
    """One incident of the plan: where, when, what (legacy codes), and whether it was announced."""

    incident_id: str     # AQ_SJDJ.SJBH, e.g. SJBJ0120261102D0301
    centre: str
    unit: str
    zone: str
    kind: str
    incident_type: str
    day: int             # days since 1970-01-01 (local)
    minute: int          # minute of day
    severity: str
    persons: int
    detection: str
    deaths: int
    warning_minutes: int | None  # precursors in this many minutes before it, or None

    @property
    def is_liuwu(self) -> bool:
        return self.incident_type in LIUWU_INCIDENT_TYPES

    @property
    def signature(self) -> str:
        return KIND_BY_NAME[self.kind].signature

    @property
    def occurred_at(self) -> datetime:
        """Local (+08:00) time, naive."""
        return datetime(1970, 1, 1) + timedelta(days=self.day, minutes=self.minute)

    @property
    def location(self) -> str:
        """AQ_SJDJ.FSDD: the unit (``BJ01-D03``), or the centre's perimeter (``BJ01-PER``) for escapes."""
        return f"{self.centre}-PER" if self.signature == "perimeter" else f"{self.centre}-{self.unit}"


def day_number(d: date) -> int:
    return (d - _EPOCH).days


def _u64(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


@functools.lru_cache(maxsize=8192)
def _shocks(seed: int, centre: str, unit: str, block: int) -> tuple[float, ...]:
    rng = random.Random(_u64(seed, "tension", centre, unit, block))
    return tuple(rng.gauss(0.0, 1.0) for _ in range(_BLOCK))


def tension_series(seed: int, centre: str, unit: str, first: int, last: int) -> list[float]:
    """Tension of a unit on days ``first..last`` (inclusive, day numbers); each value depends only on its day."""
    lo = first - MEMORY_DAYS
    shocks: list[float] = []
    for block in range(lo // _BLOCK, last // _BLOCK + 1):
        shocks.extend(_shocks(seed, centre, unit, block))
    off = (lo // _BLOCK) * _BLOCK
    out = []
    for d in range(first, last + 1):
        i = d - off
        out.append(sum(map(operator.mul, _WEIGHTS, shocks[i - MEMORY_DAYS: i + 1][::-1])))
    return out


def tension(seed: int, centre: str, unit: str, day: int) -> float:
    return tension_series(seed, centre, unit, day, day)[0]


def precursor_level(x: float) -> float:
    """How loud a unit's precursors are on a day of tension ``x`` (0 on calm days)."""
    return x - PRECURSOR_THRESHOLD if x > PRECURSOR_THRESHOLD else 0.0


def bed_factor(beds: int) -> float:
    """Size of a unit for rates: its beds over 100, with the floor that gives tiny test units some activity."""
    return max(beds, BED_FLOOR) / 100


def hazard(x: float, beds: int, scale: float = 1.0) -> float:
    """Expected incidents of a unit on a day of tension ``x``."""
    return scale * RATE_PER_100_BEDS * bed_factor(beds) * math.exp(BETA * x - BETA * BETA / 2)


def _poisson_inverse(lam: float, u: float) -> int:
    """The Poisson(lam) count at quantile ``u``: monotone in lam, so a larger hazard only adds incidents."""
    k, p = 0, math.exp(-lam)
    cdf = p
    while u > cdf and k < 1000:
        k += 1
        p *= lam / k
        cdf += p
    return k


def _pick(rng: random.Random, table: Sequence[tuple[str, float]]) -> str:
    return rng.choices([k for k, _ in table], [w for _, w in table])[0]


def plan_unit_day(seed: int, unit: EstateUnit, day: int, x: float, scale: float = 1.0) -> list[PlannedIncident]:
    """The incidents of one unit on one day, given its tension ``x`` that day."""
    if scale <= 0:
        return []
    n = _poisson_inverse(hazard(x, unit.beds, scale), _u64(seed, "incidents", unit.centre, unit.code, day) / 2 ** 64)
    out = []
    stamp = (_EPOCH + timedelta(days=day)).strftime("%Y%m%d")
    for i in range(n):
        rng = random.Random(_u64(seed, "incident", unit.centre, unit.code, day, i))
        kind = KINDS[bisect.bisect_right(_KIND_CUM, rng.random() * _KIND_CUM[-1])]
        minutes = NIGHT if rng.random() < kind.night_share else kind.minutes
        warned = rng.random() < WARNING_SHARE
        out.append(PlannedIncident(
            incident_id=f"SJ{unit.centre}{stamp}{unit.code}{i + 1:02d}", centre=unit.centre, unit=unit.code,
            zone=unit.zone, kind=kind.name, incident_type=kind.incident_type, day=day, minute=rng.choice(minutes),
            severity=_pick(rng, kind.severity), persons=rng.randint(*kind.persons), detection=_pick(rng, kind.detection),
            deaths=kind.deaths, warning_minutes=rng.randint(30, 360) if warned else None))
    return sorted(out, key=lambda p: (p.minute, p.incident_id))


def plan(seed: int, units: Iterable[EstateUnit], first: date, last: date, scale: float = 1.0) -> list[PlannedIncident]:
    """Every incident of ``units`` on days ``first..last`` (inclusive), ordered by time, centre and unit."""
    d0, d1 = day_number(first), day_number(last)
    out: list[PlannedIncident] = []
    for unit in units:
        for d, x in zip(range(d0, d1 + 1), tension_series(seed, unit.centre, unit.code, d0, d1), strict=True):
            out += plan_unit_day(seed, unit, d, x, scale)
    return sorted(out, key=lambda p: (p.day, p.minute, p.centre, p.unit, p.incident_id))
