"""The hand-computed example: dbt built over a few people written as silver rows, every indicator checked.

tests/integration/dbt_example/example.yml holds the silver rows (database example_silver) and, for every
indicator of the registry, values computed by hand. dbt builds over them into example_gold /
example_gold_staging (vars silver_schema and schema_prefix), unit and data tests included; then a bad
record (a person admitted without any zone stay) must make the census reconciliation fail the build.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.spark

EXAMPLE = yaml.safe_load((Path(__file__).parent / "dbt_example" / "example.yml").read_text(encoding="utf-8"))
SOURCES = ["person", "admission", "zone_placement", "assessment", "assessment_detox_items",
           "assessment_recovery_items", "assessment_behaviour_items", "assessment_social_items",
           "infectious_screening", "education_hours_monthly", "exam_result", "scl90_result",
           "crisis_intervention", "fitness_test", "training_session", "outside_treatment", "incident",
           "post_release_followup"]
DBT_VARS = {"silver_schema": "example_silver", "schema_prefix": "example_", **EXAMPLE["vars"]}


def _cast(value, dtype):
    from pyspark.sql import types as T

    if value is None:
        return None
    if isinstance(dtype, T.TimestampType):
        return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if isinstance(dtype, T.DateType):
        return value if isinstance(value, date) else date.fromisoformat(str(value))
    if isinstance(dtype, T.DecimalType):
        return Decimal(str(value))
    if isinstance(dtype, (T.IntegerType, T.LongType, T.ShortType)):
        return int(value)
    if isinstance(dtype, (T.DoubleType, T.FloatType)):
        return float(value)
    if isinstance(dtype, T.BooleanType):
        return bool(value)
    return str(value)


def load_example(spark, extra: dict[str, list[dict]] | None = None) -> None:
    """Write the example rows as Delta tables shaped like the real silver tables (missing columns null)."""
    spark.sql("create database if not exists example_silver")
    for table in SOURCES:
        schema = spark.table(f"silver.{table}").schema
        rows = EXAMPLE["silver"].get(table, []) + (extra or {}).get(table, [])
        unknown = {k for r in rows for k in r} - set(schema.fieldNames())
        assert not unknown, f"example.yml {table}: no such silver columns {unknown}"
        scd = {"valid_from": datetime(2020, 1, 1), "valid_to": None, "is_current": True}
        data = [tuple(_cast({**scd, **r}.get(f.name), f.dataType) for f in schema.fields) for r in rows]
        spark.createDataFrame(data, schema).write.format("delta").mode("overwrite") \
            .option("overwriteSchema", "true").saveAsTable(f"example_silver.{table}")


def _literal(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, date):
        return f"date'{v:%Y-%m-%d}'"
    if isinstance(v, (int, float)):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


@pytest.fixture(scope="module")
def example_built(legacy_loaded, spark, settings):
    from smartrehab.pipeline import dbt_build

    load_example(spark)
    return dbt_build(settings, dbt_vars=DBT_VARS, target="example_target")


def test_every_indicator_has_a_hand_computed_value(settings):
    registry = yaml.safe_load((settings.dbt_dir / "indicators" / "indicators.yml").read_text(encoding="utf-8"))
    covered = {e["indicator"] for e in EXAMPLE["expected"]}
    missing = [i["id"] for i in registry["indicators"] if i["id"] not in covered]
    assert not missing, f"indicators without a hand-computed value in example.yml: {missing}"
    by_id = {i["id"]: i for i in registry["indicators"]}
    for e in EXAMPLE["expected"]:
        assert (by_id[e["indicator"]]["model"], by_id[e["indicator"]]["column"]) == (e["model"], e["column"]), e


def test_example_build_passes_every_test(example_built):
    assert example_built["nodes"] > 100


@pytest.mark.parametrize("case", EXAMPLE["expected"], ids=lambda e: f"{e['indicator']}:{e['where']}")
def test_indicator_matches_hand_computed_value(example_built, spark, case):
    where = " and ".join([f"{k} = {_literal(v)}" for k, v in case["where"].items()] or ["true"])
    if case.get("aggregate") == "count":
        rows = spark.sql(f"select count({case['column']}) from example_gold.{case['model']} where {where}").collect()
    else:
        rows = spark.sql(f"select {case['column']} from example_gold.{case['model']} "
                         f"where centre = 'BJ01' and {where}").collect()
    assert len(rows) == 1, f"{case['model']} where {where}: {len(rows)} rows"
    got, want = rows[0][0], case["value"]
    if isinstance(want, float):
        assert got == pytest.approx(want, abs=1e-6), case["why"]
    else:
        assert got == want, case["why"]


def test_census_that_does_not_reconcile_fails_the_build(example_built, spark, settings):
    """A person admitted without any zone stay: present per silver, absent from the census. The example
    allows no mismatched admission (var census_max_mismatched_share 0), so the build must fail."""
    from smartrehab.pipeline import dbt_build

    load_example(spark, extra={
        "person": [{"person_pk": "g", "sex": "1"}],
        "admission": [{"admission_id": "rg", "person_pk": "g", "centre": "BJ01", "admitted_on": "2026-06-01"}],
    })
    try:
        with pytest.raises(RuntimeError, match="assert_census_reconciles_with_silver"):
            dbt_build(settings, select="+assert_census_reconciles_with_silver",
                      dbt_vars={**DBT_VARS, "census_max_mismatched_share": 0},
                      target="example_target")
    finally:
        load_example(spark)
