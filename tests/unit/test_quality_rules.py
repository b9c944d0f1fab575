from __future__ import annotations

import pytest

from smartrehab.catalog import load_catalog
from smartrehab.quality import catalog_rules, yaml_rules
from smartrehab.settings import load_settings


def test_catalog_derives_key_code_and_reference_rules():
    catalog = load_catalog()
    rules = catalog_rules(catalog, "silver", {"silver.admission", "silver.person"})
    adm = [r for r in rules if r.table == "silver.admission"]
    assert any(r.type == "ExpectColumnValuesToNotBeNull" and r.kwargs["column"] == "admission_id" for r in adm)
    codes = {r.kwargs["column"]: r.kwargs["value_set"] for r in adm if r.type == "ExpectColumnValuesToBeInSet"}
    assert codes["centre"] == sorted(catalog.code_tables["centre"].labels)
    refs = [r for r in adm if "left anti join silver.person" in r.kwargs.get("unexpected_rows_query", "")]
    assert refs and all(r.severity == "fail" for r in refs)
    assert not [r for r in rules if r.table not in ("silver.admission", "silver.person")]


def test_yaml_rules_only_for_existing_tables_and_validated(tmp_path):
    s = load_settings({})
    rules = yaml_rules(s, "audit", {"audit.load_reconciliation"})
    assert rules and rules[0].severity == "fail" and rules[0].kwargs["value_set"] == [True]
    assert yaml_rules(s, "audit", set()) == []
    bad = tmp_path / "expectations"
    bad.mkdir()
    (bad / "gold.yaml").write_text("t:\n  - {type: ExpectColumnValuesToNotBeNull, column: x, severity: maybe}\n")
    with pytest.raises(ValueError, match="severity"):
        yaml_rules(load_settings({}).__class__(repo_root=tmp_path), "gold", {"gold.t"})


def test_bronze_rules_cover_the_one_legacy_bronze_table():
    catalog = load_catalog()
    assert catalog_rules(catalog, "bronze", set()) == []
    rules = catalog_rules(catalog, "bronze", {"bronze.legacy_rows"})
    assert {r.table for r in rules} == {"bronze.legacy_rows"}
    not_null = {r.kwargs["column"] for r in rules if r.type == "ExpectColumnValuesToNotBeNull"}
    assert {"_legacy_table", "_source_file", "_source_row", "_file_sha256", "_load_id"} <= not_null
    tables = next(r for r in rules if r.type == "ExpectColumnValuesToBeInSet")
    assert tables.kwargs["value_set"] == sorted(catalog.tables) and tables.severity == "fail"
    unread = next(r for r in rules if "group by _legacy_table" in r.kwargs.get("unexpected_rows_query", ""))
    assert unread.severity == "warn"
