"""The estate: which centres exist at a scale factor, their beds, and the units (大队) of each centre.

One definition, read by the legacy generator (ZJ_FQFQ brigades, the incident register) and by the feed
simulator (rooms, doors, cameras and patrol routes per unit), so that both describe the same buildings.

* Centres: ``max(3, ceil(3 x SF))`` of the centre code table (SF1 = 3 centres), each with
  ``max(4, round(2700 x SF / centres))`` beds (SF1 = 900 beds a centre).
* Units: a centre's beds are split over the four zones by :data:`ZONE_SHARES` (largest remainder), and
  each zone into ``ceil(beds / UNIT_SIZE)`` units (at least one) of near-equal beds. Units are numbered
  D01, D02, ... in zone order: at SF1 a centre has 10 units (D01 zone 01, D02-D03 zone 02, D04-D08 zone 03,
  D09-D10 zone 04).
* Placement: a stay in a zone goes to one unit of that zone, chosen by a stable hash of the stay's key (the
  admission number and zone) weighted by the units' beds (:func:`place`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

BEDS_AT_SF1 = 2700
CENTRES_AT_SF1 = 3
MIN_BEDS = 4
UNIT_SIZE = 120
ZONE_SHARES = (("01", 0.10), ("02", 0.15), ("03", 0.55), ("04", 0.20))


@dataclass(frozen=True)
class EstateUnit:
    """A unit (大队) of a centre: its code (D01...), zone and nominal beds."""

    centre: str
    code: str
    zone: str
    beds: int

    @property
    def place(self) -> str:
        """The unit as a place code, e.g. ``BJ01-D03`` (ZJ_FQFQ.DDDM, AQ_SJDJ.FSDD)."""
        return f"{self.centre}-{self.code}"


def split(n: int, shares: Sequence[tuple[str, float]]) -> list[tuple[str, int]]:
    """Largest-remainder split of ``n`` by shares (ties to the earlier key)."""
    raw = [(k, n * s) for k, s in shares]
    counts = {k: int(v) for k, v in raw}
    rest = n - sum(counts.values())
    for k, _ in sorted(raw, key=lambda kv: (-(kv[1] - int(kv[1])), kv[0]))[:rest]:
        counts[k] += 1
    return [(k, counts[k]) for k, _ in shares]


def beds_per_centre(scale_factor: float, n_centres: int) -> int:
    return max(MIN_BEDS, round(BEDS_AT_SF1 * scale_factor / n_centres))


def centre_beds(scale_factor: float, codes: Sequence[str]) -> dict[str, int]:
    """Beds per centre at ``scale_factor``: the first ``max(3, ceil(3 x SF))`` centres of ``codes``."""
    if scale_factor <= 0:
        raise ValueError("scale_factor must be positive")
    n = min(len(codes), max(CENTRES_AT_SF1, math.ceil(CENTRES_AT_SF1 * scale_factor)))
    if n == 0:
        raise ValueError("the centre code table is empty")
    beds = beds_per_centre(scale_factor, n)
    return {c: beds for c in codes[:n]}


def centre_units(centre: str, beds: int) -> list[EstateUnit]:
    """The units of a centre with ``beds`` beds, numbered in zone order; every zone has at least one."""
    units: list[EstateUnit] = []
    for zone, n_zone in split(beds, ZONE_SHARES):
        n_units = max(1, math.ceil(n_zone / UNIT_SIZE))
        for u in range(n_units):
            unit_beds = n_zone // n_units + (1 if u < n_zone % n_units else 0)
            units.append(EstateUnit(centre, f"D{len(units) + 1:02d}", zone, unit_beds))
    return units


def estate(scale_factor: float, codes: Sequence[str]) -> dict[str, list[EstateUnit]]:
    """centre -> its units, for the centres that exist at ``scale_factor``."""
    return {c: centre_units(c, beds) for c, beds in centre_beds(scale_factor, codes).items()}


def place(units: Sequence[EstateUnit], zone: str, key: str) -> EstateUnit:
    """The unit of ``zone`` a stay goes to: a stable hash of ``key`` over the zone's beds."""
    candidates = [u for u in units if u.zone == zone]
    if not candidates:
        raise ValueError(f"no unit of zone {zone} in {units[0].centre if units else 'an empty centre'}")
    total = sum(u.beds for u in candidates)
    if total <= 0:
        return candidates[0]
    slot = zlib.crc32(f"{key}|{zone}".encode()) % total
    for u in candidates:
        if slot < u.beds:
            return u
        slot -= u.beds
    raise AssertionError("unreachable")  # pragma: no cover
