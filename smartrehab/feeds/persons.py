"""The detainees the live feeds talk about: the same people, under the same pseudonyms, in the same units, as the legacy data.

``legacy_persons(settings, as_of, days)`` replays the seeded legacy world exactly as
``smartrehab.generate.legacy.generate(..., as_of, days=days)`` builds it (the world runs to ``as_of + days``, the
day of the last delivery: the same arguments as ``smartrehab generate --as-of --days``) and returns, for
everyone still held in a centre on that last day, the keyed pseudonym that the legacy ingest writes to
``silver.person.person_pk`` (HMAC-SHA256 of the person number in the ``person_pk`` domain, with the platform's
pseudonymisation key) mapped to where the person is held: centre, zone and unit (the ZJ_FQFQ brigade
``<centre>-<unit>`` of the open zone stay). Handed to the feed simulator, it makes wristbands, door cards and
daily scores carry pseudonyms that resolve in silver, in the units the legacy records place them in.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import NamedTuple

from smartrehab.settings import Settings

PERSON_DOMAIN = "person_pk"


class Placement(NamedTuple):
    """Where a person is held: centre code, zone code (01-04) and unit code (D01...)."""

    centre: str
    zone: str
    unit: str


def legacy_persons(settings: Settings, as_of: date, days: int = 0) -> dict[str, Placement]:
    """person_pk -> placement for every admission in custody on ``as_of + days`` (admitted, not released).

    The legacy world depends on its last day (its history is counted back from it), so pass the same
    ``as_of`` and ``days`` as the legacy generation, not the day of the feed window. For the centre alone,
    use :func:`centres_of`.
    """
    on = as_of + timedelta(days=days)
    from smartrehab.catalog import load_catalog
    from smartrehab.generate.legacy import simulate, unit_of
    from spark_jobs.common.pseudonym import pseudonym

    world = simulate(load_catalog(settings.catalog_dir), settings.scale_factor, settings.seed, on)
    key = settings.secret("pseudonym_key")
    held = sorted((a for a in world.admissions
                   if a.admitted_on <= on and (a.released_on is None or a.released_on > on)),
                  key=lambda a: (a.centre, a.admission_id))
    out = {}
    for a in held:
        zone = a.zone_on(on)
        out[pseudonym(key, PERSON_DOMAIN, a.person_no)] = Placement(a.centre, zone, unit_of(world, a, zone).code)
    return out


def centres_of(persons: dict[str, Placement]) -> dict[str, str]:
    """person_pk -> centre code (the mapping ``legacy_persons`` returned before it knew the units)."""
    return {pk: p.centre for pk, p in persons.items()}
