"""interpreted_projections: within the block Spark compiles no projection code, and the setting comes back."""

from __future__ import annotations

import itertools

import pytest

from smartrehab.spark import CODEGEN_FACTORY_MODE, interpreted_projections

pytestmark = pytest.mark.spark

_unique = itertools.count(7919)


def _classes_compiled(spark) -> int:
    """Classes Spark has compiled so far (a histogram of their source sizes, updated on every compile)."""
    metrics = spark.sparkContext._jvm.org.apache.spark.metrics.source.CodegenMetrics
    return int(metrics.METRIC_SOURCE_CODE_SIZE().getCount())


def _project(spark) -> list[int]:
    # A literal never used before: a generated projection for it cannot come from the class cache.
    n = next(_unique)
    return [r["x"] for r in spark.range(3).selectExpr(f"id * {n} + 1 as x").collect()]


@pytest.fixture()
def no_whole_stage(spark):
    # Whole-stage code generation compiles regardless of the factory mode: keep it out of the count.
    spark.conf.set("spark.sql.codegen.wholeStage", "false")
    yield spark
    spark.conf.unset("spark.sql.codegen.wholeStage")


def test_projections_are_interpreted_inside_and_generated_outside(no_whole_stage):
    spark = no_whole_stage
    before = _classes_compiled(spark)
    _project(spark)
    assert _classes_compiled(spark) > before, "outside the block a new projection is compiled"

    with interpreted_projections(spark):
        assert spark.conf.get(CODEGEN_FACTORY_MODE) == "NO_CODEGEN"
        before = _classes_compiled(spark)
        rows = _project(spark)
        assert _classes_compiled(spark) == before, "inside the block nothing is compiled"
    assert rows[0] == 1 and rows[2] - rows[1] == rows[1] - rows[0] > 1, rows


def test_the_previous_setting_comes_back_even_after_an_error(spark):
    spark.conf.set(CODEGEN_FACTORY_MODE, "FALLBACK")
    try:
        with pytest.raises(RuntimeError), interpreted_projections(spark):
            raise RuntimeError("a load fails half-way")
        assert spark.conf.get(CODEGEN_FACTORY_MODE) == "FALLBACK"
    finally:
        spark.conf.unset(CODEGEN_FACTORY_MODE)
    with interpreted_projections(spark):
        pass
    assert spark.conf.get(CODEGEN_FACTORY_MODE, None) in (None, "FALLBACK")
