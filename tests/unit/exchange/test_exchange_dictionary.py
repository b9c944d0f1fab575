"""The exchange spec agrees with the catalog and the indicator registry, and its generated files are up to date."""

from __future__ import annotations

import csv
import dataclasses

import pytest

from smartrehab.catalog import load_catalog
from smartrehab.exchange import dictionary
from smartrehab.exchange.spec import CODES_FILE, SpecError, check_against_sources, load_spec
from smartrehab.settings import get_settings


def test_committed_field_dictionary_and_codes_are_up_to_date():
    stale = dictionary.stale(dictionary.outputs())
    assert not stale, f"{stale} out of date: run .venv/bin/python -m smartrehab.exchange.dictionary"


def test_spec_agrees_with_catalog_and_indicator_registry():
    s = get_settings()
    assert check_against_sources(load_spec(), load_catalog(s.catalog_dir), dictionary.load_indicators(s)) == []


def test_the_consistency_check_catches_a_wrong_pii_class_and_an_unknown_indicator():
    s = get_settings()
    spec = load_spec()
    f = spec.packages["person_events"].files["events"]
    cols = tuple(dataclasses.replace(c, pii="none") if c.name == "id_number" else c for c in f.columns)
    pkg = dataclasses.replace(spec.packages["person_events"], files={"events": dataclasses.replace(f, columns=cols)})
    kpi = dataclasses.replace(spec.packages["kpi_monthly"], indicators={"x": ("no_such_indicator",)})
    broken = dataclasses.replace(spec, packages={**spec.packages, "person_events": pkg, "kpi_monthly": kpi})
    problems = check_against_sources(broken, load_catalog(s.catalog_dir), dictionary.load_indicators(s))
    assert any("events.id_number: pii none differs from the catalog's direct" in p for p in problems)
    assert any("no_such_indicator is not in the indicator registry" in p for p in problems)


def test_every_direct_identifier_is_named_and_authorised_fields_exist():
    spec = load_spec()
    direct = {f.field_id(c.name) for p in spec.packages.values() for f in p.files.values() for c in f.columns
              if c.pii == "direct"}
    assert direct == {"person_events.events.name", "person_events.events.id_number", "incident_report.persons.name",
                      "incident_report.persons.id_number"}
    assert not spec.receivers["moj"].authorised_fields
    for r in spec.receivers.values():
        assert r.authorised_fields <= direct


def test_dictionary_lists_every_column_and_every_kpi_indicator():
    spec = load_spec()
    text = dictionary.FIELDS_FILE.read_text(encoding="utf-8")
    for p in spec.packages.values():
        for f in p.files.values():
            assert f"### `{f.path}`" in text
            for c in f.columns:
                assert f"| `{c.name}` |" in text
        for ind in p.indicator_ids:
            assert f"| `{ind}` |" in text
    with CODES_FILE.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    kpi = {r["code"] for r in rows if r["code_table"] == "kpi_indicator"}
    assert kpi == set(spec.packages["kpi_monthly"].indicator_ids)
    assert {"BJ01", "01"} <= {r["code"] for r in rows}


def test_malformed_spec_is_reported_with_its_place(tmp_path):
    bad = tmp_path / "packages.yaml"
    bad.write_text("packages:\n  p:\n    period: week\n    schema_version: '1.0'\n    files: {}\n")
    with pytest.raises(SpecError, match=r"packages\.p: period must be one of"):
        load_spec(bad)
    bad.write_text("packages:\n  p:\n    period: day\n    schema_version: '1.0'\n    files:\n      f:\n"
                   "        path: data/f.csv\n        key: [a]\n        columns:\n"
                   "          - {name: a, type: text, pii: none}\n")
    with pytest.raises(SpecError, match=r"files\.f column 1: type 'text'"):
        load_spec(bad)
