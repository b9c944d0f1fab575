"""Input tables for the exchange tests (inline rows, as a DAG would read them from gold) and bag helpers."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

from smartrehab.exchange import crypto
from smartrehab.exchange.bag import ALGORITHMS, manifest_text, signed_manifest
from smartrehab.settings import load_settings

DAY = "2026-11-19"
AS_OF_DAY = date(2026, 11, 20)
MONTH = "2026-10"
AS_OF_MONTH = date(2026, 11, 20)
CENTRES = ("BJ01", "BJ02")
ZONES = ("01", "02", "03", "04")
# GB 11643 numbers with a valid check digit, and names that an independent scan can look for.
PEOPLE = {
    "pk-a": ("张三", "11010519491231002X"),
    "pk-b": ("李四", "110105199001011232"),
    "pk-c": ("王五", "110105200002293011"),
}


def make_settings(tmp_path: Path, **extra):
    env = {"SMARTREHAB_VAR_DIR": str(tmp_path / "var")}
    env.update({f"SMARTREHAB_{k.upper()}": v for k, v in extra.items()})
    return load_settings(env)


def population_tables(day: str = DAY) -> dict:
    d = date.fromisoformat(day)
    pop = [{"census_date": d, "centre": c, "zone": z, "population": 10 * i + j}
           for i, c in enumerate(CENTRES, 1) for j, z in enumerate(ZONES)]
    pop.reverse()  # the builder sorts by the key
    mov = [{"movement_date": d, "centre": "BJ02", "admissions": 0, "transfers": 1, "releases": 2},
           {"movement_date": d, "centre": "BJ01", "admissions": 3, "transfers": 0, "releases": 1}]
    return {"population": pop, "movements": mov}


def kpi_tables(month: str = MONTH) -> dict:
    m = date(int(month[:4]), int(month[5:]), 1)
    ind = [{"month": m, "centre": "BJ01", "indicator_id": "detox_assessment_pass_rate", "value": 0.8333333333},
           {"month": m, "centre": "BJ01", "indicator_id": "liuwu_met", "value": 1},
           {"month": m, "centre": "BJ02", "indicator_id": "incident_rate", "value": None}]
    zones = [{"month": m, "centre": c, "zone": z, "population_month_end": 5, "population_average": 4.25}
             for c in CENTRES for z in ZONES]
    return {"indicators": ind, "zones": zones}


def person_event_rows(with_identifiers: bool = False, name_only: bool = False) -> list[dict]:
    base = [
        {"event_date": date(2026, 10, 3), "event_type": "01", "source_record_id": "RS0001", "person_pk": "pk-a",
         "centre": "BJ01", "zone": "01", "from_zone": None, "term_months": 24, "release_type": None,
         "assessment_type": None, "assessment_outcome": None, "detox_result": None, "behaviour_result": None,
         "sex": "1", "hukou_region": None, "main_drug": None},
        {"event_date": date(2026, 10, 20), "event_type": "02", "source_record_id": "FQ0002", "person_pk": "pk-b",
         "centre": "BJ01", "zone": "02", "from_zone": "01", "term_months": None, "release_type": None,
         "assessment_type": None, "assessment_outcome": None, "detox_result": None, "behaviour_result": None,
         "sex": "2", "hukou_region": None, "main_drug": None},
        {"event_date": date(2026, 10, 20), "event_type": "04", "source_record_id": "RS0003", "person_pk": "pk-c",
         "centre": "BJ02", "zone": "04", "from_zone": None, "term_months": None, "release_type": "1",
         "assessment_type": None, "assessment_outcome": None, "detox_result": None, "behaviour_result": None,
         "sex": "1", "hukou_region": None, "main_drug": None},
    ]
    for r in base:
        name, idno = PEOPLE[r["person_pk"]]
        if with_identifiers:
            r["id_number"] = idno
            if not name_only:
                r["name"] = name
        elif name_only:
            r["name"] = name
    return base


def incident_tables(with_identifiers: bool = True) -> dict:
    inc = [{"incident_id": "SJ0001", "centre": "BJ01", "incident_type": "14", "is_liuwu": "0",
            "occurred_at": datetime(2026, 10, 5, 9, 30), "zone": "02", "severity": "1", "persons_involved": 2,
            "injured": 1, "deaths": 0, "reported_to_ministry": "0", "closed_on": date(2026, 10, 9)}]
    persons = []
    for pk, role in (("pk-a", "1"), ("pk-b", "2")):
        row = {"incident_id": "SJ0001", "person_pk": pk, "role": role, "injury": "0", "referred_for_prosecution": "1"}
        if with_identifiers:
            row["name"], row["id_number"] = PEOPLE[pk]
        persons.append(row)
    return {"incidents": inc, "persons": persons}


def bag_files(bag: Path) -> dict[str, bytes]:
    return {p.relative_to(bag).as_posix(): p.read_bytes() for p in sorted(bag.rglob("*")) if p.is_file()}


def reseal(bag: Path, settings, algorithm: str = "sm2", signer_id: str = crypto.DEFAULT_SIGNER_ID) -> None:
    """Recompute every manifest and the signature with our own key, as a sender with a bug would: what is left
    for the verifier to catch is then the content itself."""
    payload = sorted(p.relative_to(bag).as_posix() for p in (bag / "data").rglob("*") if p.is_file())
    for alg in ALGORITHMS:
        (bag / f"manifest-{alg}.txt").write_text(manifest_text(
            {p: crypto.file_digests((bag / p).read_bytes())[alg] for p in payload}))
    info = (bag / "bag-info.txt").read_text(encoding="utf-8")
    size = sum((bag / p).stat().st_size for p in payload)
    info = re.sub(r"Payload-Oxum: .*", f"Payload-Oxum: {size}.{len(payload)}", info)
    (bag / "bag-info.txt").write_text(info, encoding="utf-8")
    tags = ["bagit.txt", "bag-info.txt"] + [f"manifest-{a}.txt" for a in ALGORITHMS]
    for alg in ALGORITHMS:
        (bag / f"tagmanifest-{alg}.txt").write_text(manifest_text(
            {p: crypto.file_digests((bag / p).read_bytes())[alg] for p in tags}))
    signed = signed_manifest(algorithm)
    key = crypto.signing_key(settings, algorithm)
    (bag / (signed + ".sig")).write_bytes(key.sign((bag / signed).read_bytes(), signer_id))
