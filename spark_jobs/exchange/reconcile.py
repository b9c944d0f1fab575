"""Reconcile a built package with gold: what the package's CSV files hold against what gold holds.

    findings = reconcile(spark, spec, package, period, bag_dir, ctx)   # [] when the package agrees

Gold's side is one query per package, ``sql/reconcile__<package>.sql``, returning ``(file_id, check_name,
check_value)`` rows: the file of the package, the measure, its value in gold. The package's side is
computed here from the data files of the bag, read back as a receiver would (in the receiver's encoding). Measures:

* ``rows``: data rows of the file;
* ``rows:<column>=<value>``: data rows whose column holds the value (events per event type, indicators
  per indicator);
* ``sum:<column>``: the total of an integer column (population, admissions, injured ...).

Every measure that differs is a finding with severity ``fail`` (it blocks delivery); an optional file whose
source is not loaded is a ``warn``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from smartrehab.exchange.spec import Period, Spec
from spark_jobs.exchange.extract import has_incident_person, render


@dataclass(frozen=True)
class Finding:
    file: str          # the package file id (population, events ...)
    measure: str
    severity: str      # fail | warn
    message: str
    package_value: int | None = None
    gold_value: int | None = None

    @property
    def rule(self) -> str:
        return f"reconcile:{self.file}:{self.measure}"


def gold_measures(spark, package: str, ctx: dict) -> dict[tuple[str, str], int]:
    """(file, measure) -> value, from ``sql/reconcile__<package>.sql`` over gold."""
    ctx = {**ctx, "has_incident_person": has_incident_person(spark, ctx["silver"])}
    rows = spark.sql(render(f"reconcile__{package}", **ctx)).collect()
    return {(r["file_id"], r["check_name"]): int(r["check_value"] or 0) for r in rows}


def package_measure(rows: list[dict], measure: str) -> int:
    """One measure over the rows of a data file (dicts of CSV text)."""
    if measure == "rows":
        return len(rows)
    kind, _, arg = measure.partition(":")
    if kind == "rows":
        column, _, value = arg.partition("=")
        return sum(1 for r in rows if r.get(column) == value)
    if kind == "sum":
        return sum(int(r[arg]) for r in rows if r.get(arg))
    raise ValueError(f"unknown reconciliation measure '{measure}'")


def read_data_file(bag_dir: Path, path: str, encoding: str) -> list[dict]:
    text = (Path(bag_dir) / path).read_bytes().decode(encoding)
    return list(csv.DictReader(io.StringIO(text, newline="")))


def reconcile(spark, spec: Spec, package: str, period: Period, bag_dir: Path, receiver: str,
              ctx: dict) -> list[Finding]:
    """Every disagreement between the bag's data files and gold for ``period``."""
    pkg = spec.package(package)
    codec = spec.receiver(receiver).codec
    expected = gold_measures(spark, package, ctx)
    out: list[Finding] = []
    files: dict[str, list[dict]] = {}
    for fid, fspec in pkg.files.items():
        if (Path(bag_dir) / fspec.path).is_file():
            files[fid] = read_data_file(bag_dir, fspec.path, codec)
    if package == "incident_report" and not has_incident_person(spark, ctx["silver"]):
        out.append(Finding("persons", "source", "warn",
                           f"{ctx['silver']}.incident_person (legacy AQ_SJRY) is not loaded: persons.csv of "
                           f"{period.label} is empty; load AQ_SJRY so that 公检法 get the persons involved"))
    for (fid, measure), want in sorted(expected.items()):
        path = pkg.files[fid].path if fid in pkg.files else fid
        if fid not in files:
            out.append(Finding(fid, measure, "fail", f"{path} is not in the package {bag_dir.name}", None, want))
            continue
        got = package_measure(files[fid], measure)
        if got != want:
            out.append(Finding(fid, measure, "fail",
                               f"{path}: {measure} is {got} in the package {bag_dir.name} but {want} in gold for "
                               f"{period.label}; the package was not delivered. Rebuild gold if it changed since the "
                               f"extract, else look at sql/{package}__{fid}.sql", got, want))
    return out
