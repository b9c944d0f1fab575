"""Deterministic legacy extracts: what the bureau's old business systems would hand over.

A seeded simulation of the centres' population (persons, admissions, zone stays, releases)
drives the two core tables; every other table of the catalog is generated from its
``generate:`` block (rows per person, per admission, per centre-day, ...). Files are written as
the legacy systems export them (GB18030/GBK CSV or fixed-width text) with the flaws of real
systems at configurable rates. Every flaw injected is recorded in a manifest, so tests can check
that ingestion caught each one.

One story per person (``smartrehab.generate.story``) makes the tables agree with each other: a
latent relapse propensity drawn when a person first appears (drug, injection, daily use, age at first
use, earlier episodes, family support, schooling and a hidden part) and a recovery per stay shape the
drug history (ZJ_XDS), the diagnostic assessments (ZD_PGJL and its four detail tables), the
psychological scales (XL_SCL90, XL_16PF, XL_FXPG), behaviour scores (ZJ_XWKH, ZJ_YDKH), family
contact (ZJ_TSDJ, ZJ_QQDH, ZJ_JTCY), training attendance and education hours (YD_XLJL, JY_XSHZ), the
release type, and then the one relapse day after release that the follow-ups (SY_HFJL), community
rehabilitation tests (SY_SQKF) and any readmission (ZJ_RSDJ) all report. See ``docs/synthetic-story.md``.

The security records share one world with the live-feed simulator: the units (大队) of every centre come from
``smartrehab.generate.estate`` (ZJ_FQFQ.DDDM), and the incident register (AQ_SJDJ) is the shared incident plan
of ``smartrehab.generate.incidents``, whose bursts and precursors the feeds show.

Layout: ``<landing>/legacy/<YYYYMMDD>/<TABLE>.csv|.txt`` (one folder per delivery day) and
``<landing>/_generator/legacy_<YYYYMMDD>.json`` (the manifest of that delivery).
"""

from __future__ import annotations

import functools
import json
import math
import random
import zlib
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from smartrehab.catalog import Catalog, Item, LegacyTable
from smartrehab.generate import estate, identity, incidents, story

PERSON_TABLE = "ZJ_RYJBXX"
ADMISSION_TABLE = "ZJ_RSDJ"
ZONE_TABLE = "ZJ_FQFQ"
CORE_TABLES = (PERSON_TABLE, ADMISSION_TABLE, ZONE_TABLE)
HISTORY_YEARS = 5
# Catalog rates per centre are stated for an SF1 centre (900 beds); smaller centres do less.
BEDS_PER_CENTRE_AT_SF1 = estate.BEDS_AT_SF1 / estate.CENTRES_AT_SF1
# Expected days in each zone (bureau practice; the national opinion's figures were not available).
ZONE_DAYS = {"01": 30, "02": 60}
RETURN_ZONE_DAYS = 90
FULLWIDTH = str.maketrans("0123456789-/:", "０１２３４５６７８９－／：")


@dataclass(frozen=True)
class FlawRates:
    """Probability of each flaw per eligible cell, row or file."""

    mixed_date_format: float = 0.05   # per date cell: 2024-03-01, 2024/3/1, 2024年3月1日 instead of 20240301
    fullwidth_digits: float = 0.01    # per numeric/date cell
    bad_id_checksum: float = 0.01     # per ID-number cell
    duplicate_row: float = 0.01       # per row: the row is delivered twice in the same file
    correction: float = 0.01          # per row of an earlier delivery: re-sent in a later one, changed
    orphan_reference: float = 0.004   # per reference cell: points to a record that does not exist
    unknown_code: float = 0.005       # per code cell: a code the code table does not have
    all_fields_wrong: float = 0.001   # per row: every field is garbage
    truncated_file: float = 0.05      # per file: the export stopped in the middle of the last row
    # Per ID-number cell that kept its check character: the further GB 11643 flaws (15-digit form, full-width,
    # lower-case x, impossible / future / pre-1900 birth dates), drawn from a stream of their own
    # (identity.id_flaw_rng), so that their rates change no other generated figure.
    id_flaws: identity.IdFlawRates = field(default_factory=identity.IdFlawRates)
    # Drawn from a further stream of their own (``_text_rng``), so that they too change no other figure:
    multiline_text: float = 0.01      # per long free-text cell (length >= 100): a second line typed into it,
    #                                   delivered as a quoted CSV field holding a line break (valid, accepted)
    oversized_text: float = 0.0005    # per free-text cell: longer than its catalog length (quarantined)
    cross_field: float = 0.005        # per row of a non-core table with cross-field rules (catalog/row_rules.yaml):
    #                                   an end before its start or a duration that does not match (quarantined)


@dataclass
class Admission:
    admission_id: str
    person_no: str
    centre: str
    admitted_on: date
    term_months: int
    planned_release: date
    released_on: date | None = None
    release_type: str = ""
    status: str = "01"
    zones: list[tuple[str, date, date | None]] = field(default_factory=list)
    # The story (smartrehab.generate.story): earlier admissions in this world, the person's latent
    # risk at this admission, how this stay goes, and what happens after release.
    earlier_admissions: int = 0
    propensity: float = 0.0
    recovery: float = 0.0
    relapse_day: date | None = None
    readmitted_on: date | None = None

    def zone_on(self, day: date) -> str:
        for code, start, end in self.zones:
            if start <= day and (end is None or day < end):
                return code
        return "99"


@dataclass
class Person:
    person_no: str
    name: str
    id_number: str
    sex: str
    ethnicity: str
    birth_date: date
    education: str
    region: str
    address: str
    phone: str
    main_drug: str
    updated_at: datetime
    latent: story.Latent | None = None


@dataclass
class World:
    """The simulated truth the extracts are drawn from."""

    as_of: date
    start: date
    persons: dict[str, Person]
    admissions: list[Admission]
    capacity: dict[str, int]
    seed: int = 0
    # The units of every centre (smartrehab.generate.estate): ZJ_FQFQ brigades and the incident plan.
    units: dict[str, list[estate.EstateUnit]] = field(default_factory=dict)
    # Item-level results of each assessment, drawn with its header (ZD_PGJL) and read back by its
    # detail tables (ZD_SLTD, ZD_SXKF, ZD_XWBX, ZD_SHHJ): key (admission id, type, date).
    assessment_items: dict[tuple[str, str, str], dict] = field(default_factory=dict)


def _rng(seed: int, *parts: object) -> random.Random:
    return random.Random(zlib.crc32("|".join(map(str, (seed, *parts))).encode()))


def _weighted(rng: random.Random, table: dict[str, float]) -> str:
    return rng.choices(list(table), weights=list(table.values()))[0]


def simulate(catalog: Catalog, scale_factor: float, seed: int, as_of: date) -> World:
    """Admissions and releases day by day for five years (plus a warm-up so the centres start full)."""
    rng = _rng(seed, "world")
    capacity = estate.centre_beds(scale_factor, list(catalog.code_tables["centre"].labels))
    centres = list(capacity)
    start = as_of - timedelta(days=round(365.25 * HISTORY_YEARS))
    warmup = start - timedelta(days=730)
    regions = [c for c in catalog.code_tables["region"].labels]
    region_w = {r: (6.0 if r.startswith("11") else 1.0) for r in regions}
    drugs = {"201": 40, "101": 20, "203": 12, "202": 10, "204": 4, "301": 3, "401": 2, "601": 5, "999": 2}
    education = {"70": 45, "60": 20, "80": 15, "40": 10, "30": 6, "20": 3, "90": 1}
    ethnicity = {"01": 90, "03": 3, "11": 2, "02": 1, "05": 1, "08": 1, "97": 1}
    persons: dict[str, Person] = {}
    admissions: list[Admission] = []
    present: dict[str, list[Admission]] = {c: [] for c in centres}
    # Readmissions due: (day, person_no), from the relapse drawn at each release (story.draw_outcome).
    readmit: list[tuple[date, str]] = []
    admissions_of: dict[str, int] = {}
    last_admission: dict[str, Admission] = {}
    knots = _knots()
    seq = 0
    day = warmup
    while day <= as_of:
        for centre in centres:
            stay = present[centre]
            # Releases due today.
            for adm in list(stay):
                if adm.planned_release <= day:
                    adm.released_on = day
                    adm.status = "10"
                    stay.remove(adm)
                    outcome = story.draw_outcome(rng, day, story.log_hazard(adm.propensity, adm.recovery), knots)
                    adm.relapse_day = outcome.relapse_day
                    if outcome.readmit_day is not None:
                        readmit.append((outcome.readmit_day, adm.person_no))
                    last_code, last_start, _ = adm.zones[-1]
                    adm.zones[-1] = (last_code, last_start, day)
            # Admissions: fill towards 85-95 % occupancy, a few per day at most.
            target = capacity[centre] * rng.uniform(0.85, 0.95)
            n_new = 0
            while len(stay) < target and n_new < max(1, capacity[centre] // 60):
                n_new += 1
                seq += 1
                due = next((i for i, (d, _) in enumerate(readmit) if d <= day), None)
                if due is not None:
                    person_no = readmit.pop(due)[1]
                    last_admission[person_no].readmitted_on = day
                else:
                    person_no = f"11{centre[2:]}{day:%Y}{len(persons) + 1:08d}"
                    sex = "1" if rng.random() < 0.86 else "2"
                    birth = day - timedelta(days=rng.randint(19 * 365, 58 * 365))
                    region = _weighted(rng, region_w)
                    persons[person_no] = Person(
                        person_no=person_no, name=identity.make_name(rng),
                        id_number=identity.make_id_number(rng, region, birth, sex), sex=sex,
                        ethnicity=_weighted(rng, ethnicity), birth_date=birth,
                        education=_weighted(rng, education), region=region,
                        address=identity.make_address(rng, catalog.code_tables["region"].labels[region][0]),
                        phone=identity.make_phone(rng), main_drug=_weighted(rng, drugs),
                        updated_at=datetime.combine(day, datetime.min.time()) + timedelta(hours=9),
                    )
                    p = persons[person_no]
                    p.latent = story.draw_latent(rng, p.main_drug, (day - birth).days / 365.25)
                p = persons[person_no]
                earlier = admissions_of.get(person_no, 0)
                admissions_of[person_no] = earlier + 1
                prop = story.propensity(p.latent, p.main_drug, p.education, earlier)
                recovery = story.draw_recovery(rng, prop)
                # Months served in the police centre first (3-6), the rest here.
                police_months = rng.randint(3, 6)
                term = 24
                served_here_days = round((term - police_months) * 30.4)
                # Early release for a stay that goes well (about 18 %), an extension for one that goes badly (5 %).
                roll = rng.random()
                p_early, p_extend = 0.36 * story.sigmoid(1.5 * recovery), 0.10 * story.sigmoid(-1.5 * recovery)
                if roll < p_early:    # early release after at least a year in total
                    served_here_days = round((rng.randint(12, 20) - police_months) * 30.4)
                    release_type = "2"
                elif roll < p_early + p_extend:  # extension of up to 12 months
                    served_here_days += round(rng.randint(3, 12) * 30.4)
                    release_type = "3"
                else:
                    release_type = "1"
                served_here_days = max(served_here_days, 150)
                planned = day + timedelta(days=served_here_days)
                adm = Admission(
                    admission_id=f"RS{centre}{seq:08d}", person_no=person_no, centre=centre,
                    admitted_on=day, term_months=term, planned_release=planned, release_type=release_type,
                    earlier_admissions=earlier, propensity=prop, recovery=recovery)
                last_admission[person_no] = adm
                t = day
                for code, days in ZONE_DAYS.items():
                    end = t + timedelta(days=days + max(0, round(rng.gauss(0, 6))))
                    adm.zones.append((code, t, end))
                    t = end
                ret_start = max(t + timedelta(days=30), planned - timedelta(days=RETURN_ZONE_DAYS))
                adm.zones.append(("03", t, ret_start))
                adm.zones.append(("04", ret_start, None))
                stay.append(adm)
                admissions.append(adm)
        day += timedelta(days=1)
    # Keep what the extracts cover: stays that touch the five-year window.
    admissions = [a for a in admissions if a.released_on is None or a.released_on >= start]
    for a in admissions:
        if a.released_on is None:
            a.release_type = ""
            a.zones = [(c, s, e if e is None or e <= as_of else None) for c, s, e in a.zones if s <= as_of]
    keep = {a.person_no for a in admissions}
    persons = {k: v for k, v in persons.items() if k in keep}
    return World(as_of=as_of, start=start, persons=persons, admissions=admissions, capacity=capacity, seed=seed,
                 units={c: estate.centre_units(c, beds) for c, beds in capacity.items()})


def unit_of(world: World, adm: Admission, zone: str) -> estate.EstateUnit:
    """The unit (大队) an admission's stay in ``zone`` is placed in (the same unit the feed simulator uses)."""
    return estate.place(world.units[adm.centre], zone, adm.admission_id)


@functools.lru_cache(maxsize=1)
def _knots() -> list[tuple[float, float]]:
    return story.baseline_hazard()


# ---- rendering values as a legacy system would ---------------------------------------------------
def fmt_date(d: date | None) -> str:
    return "" if d is None else f"{d:%Y%m%d}"


def fmt_datetime(t: datetime | None) -> str:
    return "" if t is None else f"{t:%Y-%m-%d %H:%M:%S}"


def _at(d: date, hour: int) -> datetime:
    return datetime.combine(d, datetime.min.time()) + timedelta(hours=hour)


def core_rows(world: World, table: str) -> list[dict[str, str]]:
    if table == PERSON_TABLE:
        return [{
            "RYBH": p.person_no, "XM": p.name, "SFZHM": p.id_number, "XB": p.sex, "MZ": p.ethnicity,
            "CSRQ": fmt_date(p.birth_date), "WHCD": p.education, "HJQH": p.region, "HJDZ": p.address,
            "LXDH": p.phone, "DPZL": p.main_drug, "GXSJ": fmt_datetime(p.updated_at),
        } for p in world.persons.values()]
    if table == ADMISSION_TABLE:
        rows = []
        for a in world.admissions:
            # One version when the person arrives, another when they leave.
            base = {"RSBH": a.admission_id, "RYBH": a.person_no, "JSDM": a.centre, "RSRQ": fmt_date(a.admitted_on),
                    "QJQX": str(a.term_months), "FQDM": "01", "RYZT": "01", "JCRQ": "", "JCLX": "",
                    "GXSJ": fmt_datetime(_at(a.admitted_on, 17))}
            rows.append(base)
            if a.released_on is not None:
                rows.append({**base, "FQDM": "99", "RYZT": a.status, "JCRQ": fmt_date(a.released_on),
                             "JCLX": a.release_type, "GXSJ": fmt_datetime(_at(a.released_on, 17))})
        return rows
    if table == ZONE_TABLE:
        rows = []
        for a in world.admissions:
            for i, (code, start, end) in enumerate(a.zones, 1):
                brigade = unit_of(world, a, code).place
                base = {"FQBH": f"FQ{a.admission_id}{i:02d}", "RSBH": a.admission_id, "RYBH": a.person_no,
                        "JSDM": a.centre, "FQDM": code, "DDDM": brigade, "ZDDM": f"{brigade}-{1 + i % 3}",
                        "SSH": f"{code}{100 + (int(a.admission_id[-3:]) % 40):03d}",
                        "CWH": str(1 + int(a.admission_id[-2:]) % 12), "JRRQ": fmt_date(start), "LKRQ": "",
                        "ZQZT": "1", "ZQYY": "", "ZQPGBH": "", "SPMJ": "", "SPRQ": "",
                        "GXSJ": fmt_datetime(_at(start, 10))}
                rows.append(base)
                if end is not None:
                    rows.append({**base, "LKRQ": fmt_date(end), "ZQZT": "2", "ZQYY": "1",
                                 "ZQPGBH": f"PG{a.admission_id}{i:02d}", "SPMJ": f"11{int(a.admission_id[-4:]):06d}",
                                 "SPRQ": fmt_date(end), "GXSJ": fmt_datetime(_at(end, 10))})
        return rows
    raise KeyError(table)


def _value(item: Item, rng: random.Random, catalog: Catalog, day: date) -> str:
    """A plausible value for one cell of a generically generated table."""
    t = item.data_type
    if t == "code":
        return rng.choice(list(catalog.code_tables[item.code_table].labels))
    if t == "date":
        return fmt_date(day)
    if t == "datetime":
        return fmt_datetime(datetime.combine(day, datetime.min.time()) + timedelta(minutes=rng.randrange(6 * 60, 22 * 60)))
    if t in ("integer", "decimal"):
        lo, hi = 0, 100
        if item.format.startswith("range:"):
            a, _, b = item.format[6:].partition("-")
            lo, hi = float(a), float(b)
        v = rng.uniform(lo, hi)
        return str(int(round(v))) if t == "integer" else f"{v:.{1 if hi - lo > 10 else 2}f}"
    if t == "id_number":
        region = rng.choice(list(catalog.code_tables["region"].labels))
        return identity.make_id_number(rng, region, day - timedelta(days=rng.randint(7000, 25000)), rng.choice("12"))
    if t == "phone":
        return identity.make_phone(rng)
    if item.is_direct_identifier:
        return identity.make_name(rng)
    return f"{item.name_zh}{rng.randrange(1, 50)}"[: max(item.length, 1)]


def generic_rows(world: World, catalog: Catalog, table: LegacyTable, seed: int,
                 parents: dict[str, list[dict[str, str]]]) -> list[dict[str, str]]:
    """Rows of a catalog table from its ``generate:`` block (rows per person/admission/centre-day...)."""
    spec = table.generate
    per, rate = spec.get("per", "admission"), float(spec.get("rate", 1))
    rng = _rng(seed, table.name)
    ref_cols = set(table.references)
    key_col = table.key[0]
    rows: list[dict[str, str]] = []

    shape = SHAPERS.get(table.name)
    emitted: dict[str, int] = defaultdict(int)

    def emit(day: date, person_no: str = "", admission_id: str = "", centre: str = "", parent: dict | None = None,
             adm: Admission | None = None, overrides: dict[str, str] | None = None):
        row = {}
        for it in table.items:
            col = it.legacy_column
            if col == "RYBH":
                row[col] = person_no
            elif col == "RSBH" and table.name != ADMISSION_TABLE:
                row[col] = admission_id
            elif col == "JSDM" and centre:
                row[col] = centre
            elif parent is not None and col in ref_cols and table.references[col].split(".")[0] == spec.get("parent"):
                row[col] = parent[table.references[col].split(".")[1]]
            elif col == table.version_column:
                row[col] = fmt_datetime(datetime.combine(day, datetime.min.time()) + timedelta(hours=18))
            else:
                row[col] = _value(it, rng, catalog, day)
        if shape is not None:
            shaped = shape(row, _ShapeContext(rng, world, day, adm, emitted[admission_id or centre], parent))
            if shaped is None:
                return
            if shaped != day:
                # Date cells were drawn on the first day; move them with the event.
                old_d, old_t = fmt_date(day), f"{day:%Y-%m-%d}"
                for it in table.items:
                    v = row.get(it.legacy_column, "")
                    if it.data_type == "date" and v == old_d:
                        row[it.legacy_column] = fmt_date(shaped)
                    elif it.data_type == "datetime" and v.startswith(old_t):
                        row[it.legacy_column] = f"{shaped:%Y-%m-%d}" + v[10:]
            day = shaped
            if table.version_column in row:
                row[table.version_column] = fmt_datetime(_at(day, 18))
        row.update(overrides or {})
        keep_row_rules(table, row, catalog)
        emitted[admission_id or centre] += 1
        if key_col not in (overrides or {}):  # a scheduler may bring the record's own key
            row[key_col] = f"{table.name[:6]}{len(rows) + 1:09d}"
        rows.append(row)

    def n_for(mean: float) -> int:
        whole = int(mean)
        return whole + (1 if rng.random() < mean - whole else 0)

    if table.name in SCHEDULED:
        for day, a, centre, overrides in SCHEDULED[table.name](world, _rng(seed, table.name, "schedule")):
            if a is None:
                emit(day, centre=centre, overrides=overrides)
            else:
                emit(day, a.person_no, a.admission_id, a.centre, adm=a, overrides=overrides)
    elif per in ("admission", "person"):
        seen: set[str] = set()
        for a in world.admissions:
            if per == "person" and a.person_no in seen:
                continue
            seen.add(a.person_no)
            end = min(a.released_on or world.as_of, world.as_of)
            span = max((end - max(a.admitted_on, world.start)).days, 1)
            for _ in range(n_for(rate)):
                day = max(a.admitted_on, world.start) + timedelta(days=rng.randrange(span))
                emit(day, a.person_no, a.admission_id, a.centre, adm=a)
    elif per in ("centre_day", "centre_month"):
        step = 1 if per == "centre_day" else 30
        day = world.start
        while day <= world.as_of:
            for centre, beds in world.capacity.items():
                # Rates in the catalog are per centre at SF1 (900 beds); smaller centres do less.
                for _ in range(n_for(rate * beds / BEDS_PER_CENTRE_AT_SF1)):
                    emit(day, centre=centre)
            day += timedelta(days=step)
    elif per == "assessment":
        for prow in parents.get(spec.get("parent", ""), []):
            for _ in range(n_for(rate)):
                emit(_parse_day(prow), prow.get("RYBH", ""), prow.get("RSBH", ""), prow.get("JSDM", ""), parent=prow)
    return rows


# ---- domain shaping of generically generated tables -------------------------------------------
# Uniform random cells make indicators meaningless (every detox item anywhere in 0-20, follow-ups
# before the release, a 六无 incident in every month). The tables the gold indicators read are
# shaped here: a shaper edits one generated row in place and returns the row's event day (which
# also sets its version time), or None to drop it; a scheduler lists the rows of a table outright.
ASSESSMENT_RULE_VERSIONS = ("BJ-2021",)
LIUWU_INCIDENT_TYPES = incidents.LIUWU_INCIDENT_TYPES
FOLLOWUP_MONTHS = {"03": 3, "06": 6, "12": 12, "24": 24, "36": 36}
EDUCATION_PLAN_HOURS = 24.0   # 4+1+1+1 week: one education day (6 h) a week
EDUCATION_HOUR_COLUMNS = ("RSJYXS", "FZJYXS", "DDJYXS", "JDJYXS", "WSJYXS", "XLJYXS", "WHJYXS", "ZYJNXS", "HGJYXS")


@dataclass
class _ShapeContext:
    rng: random.Random
    world: World
    day: date
    adm: Admission | None
    seq: int                      # rows of this table already emitted for the admission (or centre)
    parent: dict[str, str] | None


def _binary_items(row: dict[str, str], cols: tuple[str, ...], rng: random.Random, p_met: float) -> int:
    total = 0
    for c in cols:
        row[c] = "20" if rng.random() < p_met else "0"
        total += int(row[c])
    return total


def _person(ctx) -> Person | None:
    return None if ctx.adm is None else ctx.world.persons[ctx.adm.person_no]


def _progress(adm: Admission, day: date) -> float:
    """How far into the stay a day is: 0 at admission, 1 from a year on."""
    return max(0.0, min(1.0, (day - adm.admitted_on).days / 365.0))


COMPREHENSIVE_ASSESSMENTS = ("06", "07", "08")


def _draw_assessment(rng: random.Random, adm: Admission, person: Person, kind: str, day: date) -> dict:
    """Item results of one assessment from the stay's recovery and the person's family support:
    生理脱毒 five binary items (nearly always met once detox is over), 身心康复 five items (the body
    function item in 4-point steps per vital sign), 行为表现 from the period's monthly average and
    its violations, 社会环境 three sub-scores (domain brief §2.2-2.3)."""
    r, prop = adm.recovery, adm.propensity
    fs = person.latent.family_support if person.latent else 0.0
    prog = _progress(adm, day)
    detox_p = 0.6 if kind == "01" else 0.985
    detox = [rng.random() < detox_p for _ in range(5)]
    vitals = [rng.random() < story.sigmoid(3.0 + 0.8 * r + prog) for _ in range(5)]
    recovery = {
        "fitness": rng.random() < story.sigmoid(2.4 + 0.8 * r + prog),
        "psych": rng.random() < story.sigmoid(2.0 + 0.8 * r + prog),
        "relapse_scale": rng.random() < story.sigmoid(1.6 + 0.9 * r - 0.5 * prop + prog),
        "theory": rng.random() < story.sigmoid(2.4 + 0.6 * r + prog),
    }
    avg = max(0.0, min(150.0, rng.gauss(90 + 7 * r, 7)))
    serious = int(rng.random() < story.sigmoid(-3.2 - 1.2 * r))
    drug_inside = int(rng.random() < story.sigmoid(-5.0 - r + prop))
    escape = int(rng.random() < story.sigmoid(-6.0 - r))
    social = [max(0.0, min(100.0, rng.gauss(70 + 11 * fs, 10))) for _ in range(3)]
    recovery_total = 4 * sum(vitals) + 20 * sum(recovery.values())
    social_total = sum(social) / 3
    return {
        "detox": detox, "vitals": vitals, "recovery": recovery, "avg": avg, "serious": serious,
        "drug_inside": drug_inside, "escape": escape, "social": social,
        "detox_total": 20 * sum(detox), "recovery_total": recovery_total, "social_total": social_total,
        # Pass rules as the brief states them: 生理脱毒 and 身心康复 all five items (100), 行为表现 an
        # average of 80 with no serious violation, drug use or escape attempt; 社会环境 良好 from 60.
        "detox_pass": all(detox), "recovery_pass": recovery_total == 100,
        "behaviour_pass": avg >= 80 and not (serious or drug_inside or escape), "social_good": social_total >= 60,
    }


def _schedule_assessments(world: World, rng: random.Random):
    """The assessments of every admission (Beijing 细则's four kinds plus the stage assessments):
    入所调查评估 in the first week, 生理脱毒阶段性评价 when detox ends, 教育适应期阶段评估 when that
    zone ends, 一年后综合诊断评估 a year in, 期满前综合诊断评估 a month before release and a re-assessment
    after an extension. Results come from the story (``_draw_assessment``)."""
    for a in world.admissions:
        person = world.persons[a.person_no]
        zone_end = {code: end for code, _, end in a.zones}
        release = a.released_on or a.planned_release
        plan = [("01", a.admitted_on + timedelta(days=rng.randint(3, 7))),
                ("02", zone_end.get("01")), ("03", zone_end.get("02"))]
        if (release - a.admitted_on).days > 330:
            plan.append(("06", a.admitted_on + timedelta(days=rng.randint(300, 330))))
        plan.append(("07", release - timedelta(days=rng.randint(20, 40))))
        if a.release_type == "3":
            plan.append(("08", release - timedelta(days=rng.randint(5, 15))))
        for kind, day in plan:
            if day is None or day > world.as_of or day < a.admitted_on:
                continue
            items = _draw_assessment(rng, a, person, kind, day)
            world.assessment_items[(a.admission_id, kind, fmt_date(day))] = items
            passed = items["detox_pass"] and items["recovery_pass"] and items["behaviour_pass"]
            if kind == "06":
                outcome = "02" if passed and items["social_good"] else "06"
            elif kind in ("07", "08"):
                outcome = "01" if passed else ("04" if not items["social_good"] else "03")
            else:
                outcome = "05"
            scores = (items["detox_total"], items["recovery_total"], min(100.0, items["avg"]), items["social_total"])
            yield day, a, a.centre, {
                "PGLX": kind, "PGRQ": fmt_date(day), "FQDM": a.zone_on(day), "GZBB": ASSESSMENT_RULE_VERSIONS[0],
                "SLTDJG": "1" if items["detox_pass"] else "2", "SXKFJG": "1" if items["recovery_pass"] else "2",
                "XWBXJG": "1" if items["behaviour_pass"] else "2", "SHHJJG": "1" if items["social_good"] else "2",
                "SLTDDF": str(scores[0]), "SXKFDF": str(scores[1]), "XWBXDF": f"{scores[2]:.1f}",
                "SHHJDF": f"{scores[3]:.1f}", "ZHDF": f"{sum(scores) / 4:.1f}", "PGJL": outcome}


def _assessment_items(ctx, kinds: tuple[str, ...]) -> dict | None:
    """The header's drawn items, for detail tables of the assessment kinds that record this area."""
    prow = ctx.parent or {}
    if prow.get("PGLX") not in kinds:
        return None
    return ctx.world.assessment_items.get((prow.get("RSBH", ""), prow["PGLX"], prow.get("PGRQ", "")))


def _shape_detox_items(row, ctx):
    items = _assessment_items(ctx, ("02", *COMPREHENSIVE_ASSESSMENTS))
    if items is None:
        return None
    for c, met in zip(("JCYXDF", "TZYYDF", "JXZZDF", "JYZZDF", "JSZZDF"), items["detox"], strict=True):
        row[c] = "20" if met else "0"
    row["ZF"], row["JG"] = str(items["detox_total"]), "1" if items["detox_pass"] else "2"
    return ctx.day


def _shape_recovery_items(row, ctx):
    items = _assessment_items(ctx, COMPREHENSIVE_ASSESSMENTS)
    if items is None:
        return None
    for c, ok in zip(("TZZC", "HXZC", "XLZC", "XYZC", "GGNZC"), items["vitals"], strict=True):
        row[c] = "1" if ok else "0"
    row["JNCSDF"] = str(4 * sum(items["vitals"]))
    rec = items["recovery"]
    for c, k in (("TNCSDF", "fitness"), ("XLCSDF", "psych"), ("FFXDF", "relapse_scale"), ("LLKSDF", "theory")):
        row[c] = "20" if rec[k] else "0"
    row["ZF"], row["JG"] = str(items["recovery_total"]), "1" if items["recovery_pass"] else "2"
    return ctx.day


def _shape_behaviour_items(row, ctx):
    items = _assessment_items(ctx, COMPREHENSIVE_ASSESSMENTS)
    if items is None:
        return None
    rng, avg = ctx.rng, items["avg"]
    row["YDPJF"] = f"{avg:.1f}"
    row["YZWJCS"], row["SNXD"], row["TTQT"] = str(items["serious"]), str(items["drug_inside"]), str(items["escape"])
    row["LJJF"], row["LJKF"] = f"{rng.uniform(0, 120):.1f}", f"{rng.uniform(0, 80):.1f}"
    row["YSF"] = f"{max(0.0, avg * 12 + float(row['LJJF']) - float(row['LJKF'])):.1f}"
    row["HSF"] = f"{min(100.0, avg):.1f}"
    row["JG"] = "1" if items["behaviour_pass"] else "2"
    return ctx.day


def _shape_social_items(row, ctx):
    items = _assessment_items(ctx, ("01", *COMPREHENSIVE_ASSESSMENTS))
    if items is None:
        return None
    row["JTHJDF"], row["SHZCDF"], row["SYNLDF"] = (f"{p:.1f}" for p in items["social"])
    row["ZF"], row["JG"] = f"{items['social_total']:.1f}", "1" if items["social_good"] else "2"
    return ctx.day


def _shape_screening(row, ctx):
    # Intake screening within days of admission; a few periodic re-tests later in the stay.
    if ctx.adm is not None and (ctx.seq == 0 or ctx.rng.random() < 0.3):
        row["SCLX"] = "1"
        day = max(ctx.adm.admitted_on + timedelta(days=min(ctx.rng.randrange(0, 10), 45)), ctx.world.start)
        return min(day, ctx.world.as_of)
    row["SCLX"] = "2"
    return ctx.day


def _stage(a: Admission | None, day: date) -> str:
    """测评阶段 of a test taken on a day: the zone's stage (回归指导 counts as pre-release)."""
    return "4" if a is None else {"01": "2", "02": "3", "03": "4", "04": "5"}.get(a.zone_on(day), "4")


def _story(ctx) -> tuple[float, float, float, float]:
    """(propensity as records can show it, recovery, family support, progress) of the row's admission on
    its day. The propensity's hidden part is left out: scales and scores read the rest."""
    a, person = ctx.adm, _person(ctx)
    if a is None:
        return 0.0, 0.0, 0.0, 0.5
    lat = person.latent if person is not None else None
    if lat is None:
        return a.propensity, a.recovery, 0.0, _progress(a, ctx.day)
    return a.propensity - lat.hidden, a.recovery, lat.family_support, _progress(a, ctx.day)


def _clamp(v: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, v))


def _shape_scl90(row, ctx):
    """SCL-90: distress high at intake (more for a higher propensity), falling over a stay that goes
    well; the ten factor means (1-5) scatter around the person's level."""
    a, rng = ctx.adm, ctx.rng
    day = ctx.day
    if a is not None and ctx.seq == 0 and rng.random() < 0.85:
        day = min(max(a.admitted_on + timedelta(days=rng.randrange(0, 20)), ctx.world.start), ctx.world.as_of)
        row["CPJD"] = "1"
    else:
        row["CPJD"] = _stage(a, day)
    prop, r, _, _ = _story(ctx)
    prog = 0.0 if a is None else _progress(a, day)
    level = 2.3 + 0.25 * prop - prog * (0.45 + 0.25 * r) + rng.gauss(0, 0.2)
    total = 0.0
    for c in ("QTH", "QP", "RJGXMG", "YY", "JL", "DD", "KB", "PZ", "JSBX", "QTXM"):
        v = _clamp(rng.gauss(level, 0.35), 1.0, 5.0)
        row[c] = f"{v:.2f}"
        total += v
    row["ZJF"] = f"{total / 10:.2f}"
    row["ZF"] = str(round(total / 10 * 90))
    row["SFYX"] = "1" if rng.random() < 0.97 else "0"
    return day


PF16_FACTORS = ("LQX", "CHX", "WDX", "SQX", "XFX", "YHX", "GWX", "MGX", "HYX", "HXX", "SGX", "YLX", "SYX",
                "DLX", "ZLX", "JZX")


def _shape_16pf(row, ctx):
    """16PF in stens (1-10): 稳定性 C and 有恒性 G higher, 忧虑性 O and 紧张性 Q4 lower for a stay that
    goes well; the second-order 心理健康因素 Y1 = C + F + (11 - O) + (11 - Q4) as Cattell defines it."""
    rng = ctx.rng
    prop, r, _, prog = _story(ctx)
    good = 0.5 * r * (0.5 + prog) - 0.3 * prop
    shift = {"WDX": 1.0, "YHX": 0.6, "ZLX": 0.6, "YLX": -1.0, "JZX": -0.9, "XFX": 0.3}
    sten = {c: round(_clamp(rng.gauss(5.5 + 1.3 * shift.get(c, 0.0) * good, 1.6), 1, 10)) for c in PF16_FACTORS}
    for c, v in sten.items():
        row[c] = str(v)
    row["XLJKYS"] = str(sten["WDX"] + sten["XFX"] + (11 - sten["YLX"]) + (11 - sten["JZX"]))
    row["CPJD"] = _stage(ctx.adm, ctx.day)
    row["SFYX"] = "1" if rng.random() < 0.97 else "0"
    return ctx.day


RELAPSE_SCALE_DIMENSIONS = ("JYXJD", "QPX", "FXQX", "RZPC", "XSBL")


def _shape_relapse_scale(row, ctx):
    """复吸倾向 scale: five risk dimensions (0-100, higher is riskier) from the propensity, easing over
    a stay that goes well; 社会支持 from family support; craving (VAS 0-10); the total weighs the five
    risks and the missing support; risk level 低 < 45 <= 中 < 60 <= 高."""
    rng = ctx.rng
    prop, r, fs, prog = _story(ctx)
    z = 0.8 * prop - prog * (0.3 + 0.5 * r) + rng.gauss(0, 0.45)
    dims = [_clamp(50 + 14 * z + rng.gauss(0, 8), 0, 100) for _ in RELAPSE_SCALE_DIMENSIONS]
    support = _clamp(60 + 12 * fs + rng.gauss(0, 10), 0, 100)
    total = 0.8 * sum(dims) / len(dims) + 0.2 * (100 - support)
    for c, v in zip(RELAPSE_SCALE_DIMENSIONS, dims, strict=True):
        row[c] = f"{v:.1f}"
    row["SHZC"], row["ZF"] = f"{support:.1f}", f"{total:.1f}"
    row["KQVAS"] = str(round(_clamp(3.5 + 2.0 * z + rng.gauss(0, 1.5), 0, 10)))
    row["FXDJ"] = "1" if total < 45 else ("2" if total < 60 else "3")
    row["CPJD"] = _stage(ctx.adm, ctx.day)
    row["SFYX"] = "1" if rng.random() < 0.97 else "0"
    return ctx.day


def _shape_score_event(row, ctx):
    """A behaviour-score event (ZJ_XWKH): deductions, penalties and serious violations more likely,
    bonuses and outstanding conduct less likely, for a stay that goes badly."""
    rng = ctx.rng
    _, r, _, _ = _story(ctx)
    kind = _weighted(rng, {"1": 30 * math.exp(-0.6 * r), "2": 55 * math.exp(0.4 * r), "3": 5 * math.exp(-0.8 * r),
                           "4": 5 * math.exp(0.5 * r), "5": 1.5 * math.exp(-1.0 * r)})
    lo, hi = {"1": (1, 5), "2": (1, 5), "3": (5, 20), "4": (5, 10), "5": (20, 50)}[kind]
    row["JFLX"], row["FZ"] = kind, f"{rng.randint(lo, hi):.1f}"
    row["KHYF"], row["YXBZ"] = f"{ctx.day:%Y%m}", "1" if rng.random() < 0.98 else "0"
    return ctx.day


def _shape_monthly_score(row, ctx):
    """The month's behaviour total (ZJ_YDKH, 0-150 in practice; 80 passes) and its grade."""
    rng = ctx.rng
    _, r, _, _ = _story(ctx)
    total = _clamp(rng.gauss(90 + 7 * r, 8), 0, 150)
    row["YDZF"], row["KHYF"] = f"{total:.1f}", f"{ctx.day:%Y%m}"
    row["KHDC"] = "1" if total >= 100 else ("2" if total >= 90 else ("3" if total >= 80 else "4"))
    return ctx.day


def _shape_visit(row, ctx):
    """Family visits (ZJ_TSDJ): how many happen follows family support; the end is start + duration."""
    _, _, fs, _ = _story(ctx)
    if ctx.rng.random() > story.sigmoid(0.4 + 1.3 * fs):
        return None
    start = datetime.combine(ctx.day, datetime.min.time()) + timedelta(hours=ctx.rng.randint(9, 15),
                                                                       minutes=ctx.rng.choice((0, 15, 30, 45)))
    minutes = ctx.rng.randint(20, 60)
    row["KSSJ"], row["JSSJ"], row["SC"] = fmt_datetime(start), fmt_datetime(start + timedelta(minutes=minutes)), str(minutes)
    return ctx.day


def _shape_call(row, ctx):
    """Family calls (ZJ_QQDH): fewer for weak family support."""
    _, _, fs, _ = _story(ctx)
    return None if ctx.rng.random() > story.sigmoid(0.8 + 1.1 * fs) else ctx.day


def _shape_family_member(row, ctx):
    """Family members (ZJ_JTCY): drug use in the family is likelier where support is weak."""
    _, _, fs, _ = _story(ctx)
    row["SFXD"] = "1" if ctx.rng.random() < story.sigmoid(-2.2 - 0.9 * fs) else "0"
    return ctx.day


DRUG_METHOD = {"101": "01", "102": "05", "103": "04", "201": "01", "202": "04", "203": "03", "204": "04"}


def _shape_drug_history(row, ctx):
    """Drug history (ZJ_XDS), recorded at intake: the admission's first row is the main drug with the
    person's latent history (age at first use, injection, daily use, earlier compulsory and community
    episodes); further rows are other drugs used."""
    a, person, rng = ctx.adm, _person(ctx), ctx.rng
    if a is None or person is None or person.latent is None:
        return ctx.day
    lat = person.latent
    day = min(max(a.admitted_on + timedelta(days=rng.randint(0, 5)), ctx.world.start), ctx.world.as_of)
    age = (a.admitted_on - person.birth_date).days / 365.25
    if ctx.seq == 0:
        row["DPZL"], row["SFZYDP"] = person.main_drug, "1"
        row["SCXDNL"] = str(lat.first_use_age)
        row["SCXDRQ"] = fmt_date(person.birth_date + timedelta(days=round(365.25 * lat.first_use_age)))
        row["XDNX"] = str(max(0, int(age) - lat.first_use_age))
        row["XSFS"] = "05" if lat.injects else DRUG_METHOD.get(person.main_drug, "07")
        row["SFGYZJ"] = "1" if lat.injects and rng.random() < 0.4 else "0"
        row["XSPL"] = rng.choice(("1", "2")) if lat.daily_use else rng.choice(("3", "4", "5", "6"))
        row["QJCS"] = str(lat.prior_episodes + a.earlier_admissions + 1)
        row["SQJDCS"] = str(lat.prior_community + a.earlier_admissions)
    else:
        row["SFZYDP"] = "0"
        if row.get("DPZL") == person.main_drug:
            row["DPZL"] = "999"
    row["MCXDRQ"] = fmt_date(a.admitted_on - timedelta(days=rng.randint(0, 20)))
    return day


def _shape_community_rehab(row, ctx):
    """社区康复 ordered at release (up to three years): urine tests turn positive after the relapse
    day; the order ends in a new compulsory admission for those readmitted."""
    a, rng, as_of = ctx.adm, ctx.rng, ctx.world.as_of
    if a is None or a.released_on is None or a.released_on > as_of:
        return None
    months = rng.choice((12, 24, 36))
    start = a.released_on + timedelta(days=rng.randint(1, 15))
    if start > as_of:
        return None
    end = start + timedelta(days=round(months * 30.4))
    seen_to = min(end, as_of, a.readmitted_on or as_of)
    tests = max(0, (seen_to - start).days // 30)
    positive = 0
    if a.relapse_day is not None and a.relapse_day <= seen_to:
        positive = max(1, (seen_to - a.relapse_day).days // 60)
    if a.readmitted_on is not None and a.readmitted_on <= as_of:
        status = "6"
    elif positive and rng.random() < 0.5:
        status = "5"
    elif end <= as_of:
        status = "2"
    else:
        status = "1"
    row.update({"JDRQ": fmt_date(a.released_on), "QX": str(months), "KSRQ": fmt_date(start),
                "JSRQ": fmt_date(min(end, seen_to) if status in ("2", "6") else end),
                "ZXZT": status, "NJCS": str(tests), "YXCS": str(min(positive, tests)),
                "WFXYCS": str(rng.randint(1, 3) if status == "5" else 0)})
    return a.released_on


def _shape_fitness(row, ctx):
    score = max(0, min(100, round(ctx.rng.gauss(62, 14))))
    row["ZHPF"], row["SFDB"] = str(score), "1" if score >= 60 else "0"
    return ctx.day


def _shape_training(row, ctx):
    _, r, _, _ = _story(ctx)
    row["CQZT"] = _weighted(ctx.rng, {"1": 85 * math.exp(0.3 * r), "2": 5, "3": 5, "4": 4 * math.exp(-0.9 * r),
                                      "5": 1 * math.exp(-0.5 * r)})
    return ctx.day


def _shape_exam(row, ctx):
    score = max(0.0, min(100.0, ctx.rng.gauss(74, 13)))
    row["CJ"], row["JGX"], row["SFJG"] = f"{score:.1f}", "60.0", "1" if score >= 60 else "0"
    return ctx.day


def _shape_outside_treatment(row, ctx):
    row["RYRQ"] = fmt_date(ctx.day)
    stay = 0 if row["JZLX"] != "3" else ctx.rng.randint(2, 20)
    row["CYRQ"] = fmt_date(min(ctx.day + timedelta(days=stay), ctx.world.as_of))
    return ctx.day


def _schedule_incidents(world: World, rng: random.Random):
    """The incident register: every incident of the shared plan (``smartrehab.generate.incidents``) on every
    day of the history, in every unit, so that the live feeds' bursts are these incidents. About 0.05 a day
    per 100 beds (a unit's latent tension drives it); 1.2 % are 六无 incidents. FSDD is the unit
    (``BJ01-D03``) or the perimeter (``BJ01-PER``) for escapes, FQDM the unit's zone, FSSJ the minute."""
    units = [u for centre in world.capacity for u in world.units[centre]]
    for inc in incidents.plan(world.seed, units, world.start, world.as_of):
        at = inc.occurred_at
        reported = at + timedelta(minutes=rng.randint(20, 240) if inc.severity >= "2" else rng.randint(60, 600))
        yield at.date(), None, inc.centre, {
            "SJBH": inc.incident_id, "SJLX": inc.incident_type, "SFLW": "1" if inc.is_liuwu else "0",
            "FSSJ": fmt_datetime(at), "FSDD": inc.location, "FQDM": inc.zone, "SJDJ": inc.severity,
            "FXFS": inc.detection, "SJRS": str(inc.persons), "SWRS": str(inc.deaths),
            "SSRS": str(min(inc.persons, rng.randint(0, 2))) if inc.signature in ("fight", "medical") else "0",
            "BJSJ": fmt_datetime(reported), "SFBB": "1" if inc.severity >= "3" else "0"}


def _schedule_education_hours(world: World, rng: random.Random):
    """One JY_XSHZ row per admission per calendar month in the centre; more hours for a stay that goes well."""
    for a in world.admissions:
        end = min(a.released_on or world.as_of, world.as_of)
        month = date(max(a.admitted_on, world.start).year, max(a.admitted_on, world.start).month, 1)
        while month <= end:
            total = max(0.0, rng.gauss(EDUCATION_PLAN_HOURS + 3 * a.recovery, 5))
            weights = [rng.random() for _ in EDUCATION_HOUR_COLUMNS]
            hours = {c: f"{total * w / sum(weights):.1f}" for c, w in zip(EDUCATION_HOUR_COLUMNS, weights, strict=True)}
            got = sum(float(v) for v in hours.values())
            day = min(date(month.year + month.month // 12, month.month % 12 + 1, 1) - timedelta(days=1), end)
            yield day, a, a.centre, {**hours, "TJYF": f"{month:%Y%m}", "HJXS": f"{got:.1f}",
                           "SFDB": "1" if got >= EDUCATION_PLAN_HOURS else "0"}
            month = date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _schedule_followups(world: World, rng: random.Random):
    """Follow-up contacts of released people at 3, 6, 12, 24 and 36 months, telling the story's one
    relapse day: 操守保持 before it, 复吸 (positive test) from it on, 再次被强制隔离戒毒 once readmitted
    (no further follow-ups of that release); one in ten is lost (失联) from some visit on."""
    for a in world.admissions:
        if a.released_on is None:
            continue
        lost_after = rng.choice([None] * 9 + [rng.choice(list(FOLLOWUP_MONTHS.values()))])
        for code, months in FOLLOWUP_MONTHS.items():
            day = a.released_on + timedelta(days=round(months * 30.4) + rng.randint(-7, 7))
            if day > world.as_of:
                break
            back = a.readmitted_on is not None and a.readmitted_on <= day
            if back:
                result, test = "5", "9"
            elif lost_after is not None and months >= lost_after:
                result, test = "3", "9"
            elif a.relapse_day is not None and a.relapse_day <= day:
                result, test = "2", "2"
            else:
                result, test = "1", "1"
            yield day, a, a.centre, {"HFJD": code, "HFRQ": fmt_date(day), "JCTS": str((day - a.released_on).days),
                                     "HFJG": result, "NJJG": test}
            if back:
                break


SHAPERS = {
    "ZD_SLTD": _shape_detox_items, "ZD_SXKF": _shape_recovery_items,
    "ZD_XWBX": _shape_behaviour_items, "ZD_SHHJ": _shape_social_items, "YL_CRBS": _shape_screening,
    "XL_SCL90": _shape_scl90, "YD_TZCS": _shape_fitness, "YD_XLJL": _shape_training, "JY_KSCJ": _shape_exam,
    "YL_WZJY": _shape_outside_treatment, "XL_16PF": _shape_16pf, "XL_FXPG": _shape_relapse_scale,
    "ZJ_XWKH": _shape_score_event, "ZJ_YDKH": _shape_monthly_score, "ZJ_TSDJ": _shape_visit, "ZJ_QQDH": _shape_call,
    "ZJ_JTCY": _shape_family_member, "ZJ_XDS": _shape_drug_history, "SY_SQKF": _shape_community_rehab,
}
SCHEDULED = {"ZD_PGJL": _schedule_assessments, "JY_XSHZ": _schedule_education_hours, "SY_HFJL": _schedule_followups,
             "AQ_SJDJ": _schedule_incidents}


def _parse_day(row: dict[str, str]) -> date:
    for v in row.values():
        if len(v) == 8 and v.isdigit():
            return datetime.strptime(v, "%Y%m%d").date()
    return date(2024, 1, 1)


# ---- flaws ------------------------------------------------------------------------------------
@dataclass
class Flaw:
    file: str
    line: int          # physical line in the file (header = line 1)
    kind: str
    column: str = ""
    key: str = ""
    detail: str = ""


def _mixed_date(d: str, rng: random.Random) -> str:
    y, m, dd = d[:4], int(d[4:6]), int(d[6:8])
    return rng.choice((f"{y}-{m:02d}-{dd:02d}", f"{y}/{m}/{dd}", f"{y}年{m}月{dd}日"))


# Second lines typed into a free-text field (a remark or an address over two lines); some hold quotes.
SECOND_LINES = ("另见附件", "（补记）家属已知情", '注明"暂缓"', "同上", '原件备注"待核实"')  # no full-width ：．－／ (silver normalises them)
MULTILINE_MIN_LENGTH = 100


def _text_rng(seed: int, *parts: object) -> random.Random:
    """The stream of the free-text and cross-field flaws, apart from every other stream of the generator."""
    return random.Random("|".join(map(str, (seed, "textflaws", *parts))))


def _text_flaws(table: LegacyTable, row: dict[str, str], rates: FlawRates, rng: random.Random,
                catalog: Catalog, core: bool) -> list[tuple[str, str, str]]:
    """Cross-field and free-text flaws of one row, in place: (kind, column, detail). A cross-field flaw's
    detail is the quarantine rule it breaks (``<rule>:<column>``); a multi-line text's is the value delivered."""
    marks = []
    if not core and rng.random() < rates.cross_field:
        for rule in catalog.row_rules.rules_of(table.name):
            p = rule.params
            if rule.rule == "not_before" and row.get(p["column"]) and row.get(p["than"]) \
                    and row[p["column"]] != row[p["than"]] and table.item(p["column"]).data_type \
                    == table.item(p["than"]).data_type:
                row[p["column"]], row[p["than"]] = row[p["than"]], row[p["column"]]
                marks.append(("cross_field", p["column"], rule.code))
                break
            if rule.rule == "duration" and row.get(p["value"], "").isdigit():
                row[p["value"]] = str(int(row[p["value"]]) + 30)
                marks.append(("cross_field", p["value"], rule.code))
                break
    if table.file_format == "fixed_width":
        return marks                  # a fixed-width export has no quoting and cuts every field to its width
    for it in table.items:
        col, v = it.legacy_column, row.get(it.legacy_column, "")
        if not v or col in table.key or col in table.references or it.data_type not in catalog.row_rules.text_types:
            continue
        u = rng.random()
        if u < rates.oversized_text:
            row[col] = (v * (it.length // len(v) + 2))[: it.length + 1 + rng.randrange(it.length)]
            marks.append(("oversized_text", col, v))
        elif u < rates.oversized_text + rates.multiline_text and it.length >= MULTILINE_MIN_LENGTH:
            value = f"{v}\r\n{rng.choice(SECOND_LINES)}"
            if len(value) <= it.length:
                row[col] = value
                marks.append(("multiline_text", col, value))
    return marks


def keep_row_rules(table: LegacyTable, row: dict[str, str], catalog: Catalog) -> None:
    """Make a clean generated row keep the cross-field rules of catalog/row_rules.yaml (independently drawn
    start and end times are put in order, a duration follows its times), without drawing anything."""
    for rule in catalog.row_rules.rules_of(table.name):
        p = rule.params
        if rule.rule == "not_before":
            a, b = row.get(p["column"], ""), row.get(p["than"], "")
            if a and b and table.item(p["column"]).data_type == table.item(p["than"]).data_type and a < b:
                row[p["column"]], row[p["than"]] = b, a
        elif rule.rule == "duration" and row.get(p["start"]) and row.get(p["end"]) and p["unit"] == "minutes":
            try:
                start, end = (datetime.strptime(row[p[k]], "%Y-%m-%d %H:%M:%S") for k in ("start", "end"))
            except ValueError:
                continue
            row[p["value"]] = str(round((end - start).total_seconds() / 60))


def inject_flaws(table: LegacyTable, rows: list[dict[str, str]], rates: FlawRates, rng: random.Random,
                 catalog: Catalog, id_rng: random.Random | None = None, day: date | None = None,
                 text_rng: random.Random | None = None,
                 ) -> tuple[list[dict[str, str]], list[tuple[int, str, str, str]]]:
    """Apply cell- and row-level flaws; returns new rows and (row_index, kind, column, detail).

    ``id_rng`` (``identity.id_flaw_rng``) draws the further ID-number flaws of ``rates.id_flaws`` once per
    non-empty ID cell, whether or not the cell took another flaw (which then wins), so the stream moves alike
    whatever else is drawn; ``day`` is the delivery day (a future birth date lies after it). ``text_rng``
    (``_text_rng``) draws the cross-field and free-text flaws (``_text_flaws``). Without a stream its flaws
    are not drawn."""
    out: list[dict[str, str]] = []
    marks: list[tuple[int, str, str, str]] = []
    # A fixed-width export pads every field to its width: no free-form dates or full-width digits.
    cell_format_flaws = table.file_format != "fixed_width"
    for row in rows:
        row = dict(row)
        idx = len(out)
        if rng.random() < rates.all_fields_wrong:
            for col in row:
                row[col] = "#" + "".join(rng.choice("?*~") for _ in range(3))
            out.append(row)
            marks.append((idx, "all_fields_wrong", "", ""))
            continue
        if text_rng is not None:
            marks += [(idx, *m) for m in _text_flaws(table, row, rates, text_rng, catalog, table.name in CORE_TABLES)]
        for it in table.items:
            col, v = it.legacy_column, row[it.legacy_column]
            if not v or col in table.key:
                continue
            if cell_format_flaws and it.data_type == "date" and rng.random() < rates.mixed_date_format:
                row[col] = _mixed_date(v, rng)
                marks.append((idx, "mixed_date_format", col, v))
            elif cell_format_flaws and it.data_type in ("integer", "decimal", "date") \
                    and rng.random() < rates.fullwidth_digits:
                row[col] = v.translate(FULLWIDTH)
                marks.append((idx, "fullwidth_digits", col, v))
            elif it.data_type == "id_number" and rng.random() < rates.bad_id_checksum:
                row[col] = identity.corrupt_id_check(v)
                marks.append((idx, "bad_id_checksum", col, v))
                if id_rng is not None:
                    identity.id_flaw(id_rng, v, day or date.today(), rates.id_flaws, not cell_format_flaws)
            elif it.data_type == "id_number" and id_rng is not None and identity.valid_id_number(v, day) \
                    and (hit := identity.id_flaw(id_rng, v, day or date.today(), rates.id_flaws,
                                                 not cell_format_flaws)):
                row[col] = hit[1]
                marks.append((idx, hit[0], col, v))
            elif it.data_type == "code" and rng.random() < rates.unknown_code:
                row[col] = "ZZ"
                marks.append((idx, "unknown_code", col, v))
            elif col in table.references and rng.random() < rates.orphan_reference:
                row[col] = "ORPHAN" + v[-8:]
                marks.append((idx, "orphan_reference", col, v))
        out.append(row)
        if rng.random() < rates.duplicate_row:
            out.append(dict(row))
            marks.append((idx + 1, "duplicate_row", "", ""))
    return out, marks


# ---- writing ----------------------------------------------------------------------------------
def render(table: LegacyTable, rows: list[dict[str, str]]) -> list[str]:
    """Lines of the export file (header first for CSV; fixed-width files have no header)."""
    cols = table.columns
    if table.file_format == "fixed_width":
        return ["".join(_fit(row[c], it.length) for c, it in zip(cols, table.items, strict=True)) for row in rows]
    lines = [table.delimiter.join(cols)]
    for row in rows:
        lines.append(table.delimiter.join(_csv_cell(row[c], table.delimiter) for c in cols))
    return lines


def _fit(value: str, width: int) -> str:
    """Pad or cut to ``width`` display cells; a CJK character takes two bytes (and cells) in GB18030."""
    out, used = [], 0
    for ch in value:
        w = 2 if ord(ch) > 0x7F else 1
        if used + w > width:
            break
        out.append(ch)
        used += w
    return "".join(out) + " " * (width - used)


def _csv_cell(v: str, delim: str) -> str:
    if any(c in v for c in (delim, '"', "\n", "\r")):
        return '"' + v.replace('"', '""') + '"'
    return v


def write_file(path: Path, lines: list[str], encoding: str, truncate: bool) -> None:
    text = "\r\n".join(lines) + "\r\n"
    data = text.encode(encoding)
    if truncate:
        last = ("\r\n".join(lines[-1:]) + "\r\n").encode(encoding)
        data = data[: len(data) - len(last) // 2 - 2]
    tmp = path.with_name("." + path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)


@dataclass
class Delivery:
    day: date
    folder: Path
    files: dict[str, Path]
    flaws: list[Flaw]
    rows: dict[str, int]


def file_name(table: LegacyTable) -> str:
    return f"{table.name}.{'txt' if table.file_format == 'fixed_width' else 'csv'}"


def generate(catalog: Catalog, landing: Path, scale_factor: float, seed: int, as_of: date,
             rates: FlawRates | None = None, days: int = 0, tables: list[str] | None = None,
             progress=None) -> list[Delivery]:
    """The full extract as of ``as_of`` and ``days`` daily incremental deliveries after it.

    Every delivery gets its own folder; the incremental ones carry the day's new and changed
    records and corrections of earlier rows (a later file fixing an earlier one).
    """
    rates = rates or FlawRates()
    names = tables or list(catalog.tables)
    # Parents before children.
    names = sorted(names, key=lambda n: (n not in CORE_TABLES,
                                         catalog.tables[n].generate.get("per") == "assessment"))
    final_day = as_of + timedelta(days=days)
    world = simulate(catalog, scale_factor, seed, final_day)
    # Table by table, written as soon as drawn: only tables that others are drawn from (a
    # header's rows for its child table) stay in memory, so SF1 fits in a few GiB.
    needed = {catalog.tables[n].generate.get("parent") for n in names} - {None}
    deliveries = [Delivery(as_of + timedelta(days=n), landing / "legacy" / f"{as_of + timedelta(days=n):%Y%m%d}",
                           {}, [], {}) for n in range(days + 1)]
    kept: dict[str, list[dict[str, str]]] = {}
    for name in names:
        table = catalog.tables[name]
        rows = core_rows(world, name) if name in CORE_TABLES else generic_rows(world, catalog, table, seed, kept)
        for n, delivery in enumerate(deliveries):
            _deliver_table(catalog, table, rows, seed, delivery, n == 0, rates, progress)
        if name in needed:
            kept[name] = rows
    for d in deliveries:
        manifest_dir = landing / "_generator"
        manifest_dir.mkdir(parents=True, exist_ok=True)
        (manifest_dir / f"legacy_{d.day:%Y%m%d}.json").write_text(json.dumps(
            {"day": f"{d.day:%Y-%m-%d}", "rows": d.rows, "flaws": [asdict(f) for f in d.flaws]},
            ensure_ascii=False, indent=1), encoding="utf-8")
    return deliveries


def _snapshot_filter(row: dict[str, str], table: LegacyTable, day: date, first: bool) -> bool:
    """Whether a row belongs to the delivery of ``day`` (all rows up to it, or that day's changes)."""
    v = row.get(table.version_column, "")[:10]
    if not v:
        return first
    stamp = f"{day:%Y-%m-%d}"
    return v <= stamp if first else v == stamp


def _deliver_table(catalog: Catalog, table: LegacyTable, all_rows: list[dict[str, str]], seed: int,
                   delivery: Delivery, first: bool, rates: FlawRates, progress) -> None:
    """Write one table's file of one delivery (the full extract when ``first``, else that day's changes)."""
    day, folder, name = delivery.day, delivery.folder, table.name
    folder.mkdir(parents=True, exist_ok=True)
    rng = _rng(seed, "flaws", day, name)
    flaws, files, counts = delivery.flaws, delivery.files, delivery.rows
    stamp = f"{day:%Y-%m-%d}"
    rows = [r for r in all_rows if _snapshot_filter(r, table, day, first)]
    if first:
        # A full extract holds each record as it stood on the day: its latest version.
        latest: dict[str, dict[str, str]] = {}
        for r in rows:
            k = r[table.key[0]]
            if k not in latest or r[table.version_column] >= latest[k][table.version_column]:
                latest[k] = r
        rows = list(latest.values())
    corrections = []
    col = _correctable(table)
    if not first and col is not None:
        # Late corrections: earlier rows re-sent with a changed value and a later version time.
        older = [r for r in all_rows if r.get(table.version_column, "")[:10] < stamp]
        k = min(len(older), max(1 if older else 0, round(len(older) * rates.correction / 50)))
        item = table.item(col)
        for r in rng.sample(older, k):
            fixed = dict(r)
            fixed[col] = _other_code(catalog, item, r[col], rng) if item.data_type == "code" \
                else _value(item, rng, catalog, day)
            fixed[table.version_column] = fmt_datetime(datetime.combine(day, datetime.min.time()) + timedelta(hours=20))
            corrections.append((fixed, col, r[col]))
    base = rows + [c[0] for c in corrections]
    flawed, marks = inject_flaws(table, base, rates, rng, catalog, identity.id_flaw_rng(seed, name, day), day,
                                 _text_rng(seed, name, day))
    fname = file_name(table)
    header = 1 if table.file_format == "csv" else 0
    truncate = len(flawed) > 2 and rng.random() < rates.truncated_file
    lines = render(table, flawed)
    # The physical line each row starts on: a quoted field with a line break makes a row span several lines.
    starts, at = [], 1 + header
    for text in lines[header:]:
        starts.append(at)
        at += 1 + text.count("\n")
    for idx, kind, col_, detail in marks:
        flaws.append(Flaw(fname, starts[idx], kind, col_, flawed[idx].get(table.key[0], ""), detail))
    for fixed, col_, old in corrections:
        flaws.append(Flaw(fname, 0, "correction", col_, fixed[table.key[0]], old))
    if truncate:
        flaws.append(Flaw(fname, starts[-1], "truncated_file", "", flawed[-1][table.key[0]], ""))
    path = folder / fname
    write_file(path, lines, table.encoding, truncate)
    files[name] = path
    counts[name] = len(flawed)
    if progress:
        progress(f"{day:%Y-%m-%d} {name}: {len(flawed)} rows")


def _correctable(table: LegacyTable) -> str | None:
    skip = set(table.key) | {table.version_column} | set(table.references)
    for it in table.items:
        if it.legacy_column not in skip and it.data_type in ("code", "integer", "decimal", "string") \
                and not it.is_direct_identifier:
            return it.legacy_column
    return None


def _other_code(catalog: Catalog, item: Item, old: str, rng: random.Random) -> str:
    codes = [c for c in catalog.code_tables[item.code_table].labels if c != old]
    return rng.choice(codes) if codes else old


def flaw_summary(deliveries: list[Delivery]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for d in deliveries:
        for f in d.flaws:
            out[f.kind] += 1
    return dict(out)
