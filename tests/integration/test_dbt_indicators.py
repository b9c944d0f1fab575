"""dbt indicators (four-zone flows, stay durations, detox assessment, screening coverage, data issues).

Builds the dbt project over the loaded silver tables and checks the gold marts against independent
Spark queries over silver, plus the indicator registry (dbt/indicators/indicators.yml).
"""

from __future__ import annotations

import pytest
import yaml

pytestmark = pytest.mark.spark

RATE_COLUMNS = {
    "fct_detox_assessment_pass_rate": ["pass_rate"],
    "fct_infectious_screening_coverage_rate": [
        "hiv_coverage_rate", "hcv_coverage_rate", "syphilis_coverage_rate", "tb_coverage_rate", "full_coverage_rate",
    ],
    "fct_assessment_outcome_rate": [
        "assessment_pass_rate", "early_release_proposal_rate", "extension_proposal_rate",
        "community_rehab_recommendation_rate",
    ],
}


@pytest.fixture(scope="module")
def built(legacy_loaded, spark, settings):
    from smartrehab.pipeline import dbt_build

    return dbt_build(settings)


def one(spark, sql):
    return spark.sql(sql).collect()[0][0]


def test_build_ran_every_node(built):
    assert built["nodes"] > 0


def test_admissions_and_releases_match_silver(built, spark):
    got = spark.sql("select sum(admissions), sum(releases) from gold.fct_zone_movements").collect()[0]
    assert got[0] == one(spark, "select count(*) from silver.admission where is_current and admitted_on is not null")
    assert got[1] == one(spark, "select count(*) from silver.admission where is_current and released_on is not null")


def test_transfers_are_placements_after_the_first(built, spark):
    expected = one(spark, """
        select count(*) from (
            select entered_on, row_number() over (
                partition by admission_id order by entered_on, zone_placement_id) as rn
            from silver.zone_placement where is_current
        ) where rn > 1 and entered_on is not null""")
    assert one(spark, "select sum(transfers) from gold.fct_zone_movements") == expected
    # the flow chart carries the same moves between zones (edges not starting at 00 nor ending at EX)
    assert one(spark, """select sum(transitions) from gold.fct_zone_transitions
                         where from_zone != '00' and to_zone != 'EX'""") == one(spark, """
        select count(*) from (
            select row_number() over (partition by admission_id order by entered_on, zone_placement_id) as rn
            from silver.zone_placement where is_current
        ) where rn > 1""")


def test_every_stay_is_measured_and_overdue_is_consistent(built, spark):
    n_stays = one(spark, "select count(*) from gold.fct_zone_stay_durations")
    assert n_stays == one(spark, "select count(distinct zone_placement_id) from gold.fct_zone_stay_durations")
    assert one(spark, """select count(*) from gold.fct_zone_stay_durations
                         where is_overdue and (not exceeded_expected or has_later_transfer or is_released
                                               or zone not in ('01', '02'))""") == 0
    assert one(spark, "select count(*) from gold.fct_zone_stay_durations where stay_days < 0 and left_on >= entered_on") == 0


def test_rates_are_between_zero_and_one(built, spark):
    for model, cols in RATE_COLUMNS.items():
        for col in cols:
            bad = one(spark, f"select count(*) from gold.{model} where {col} < 0 or {col} > 1")
            assert bad == 0, f"{model}.{col} out of [0, 1]"
    assert one(spark, "select count(*) from gold.fct_bed_occupancy where occupancy_rate < 0") == 0


def test_detox_pass_rule_matches_silver_items(built, spark):
    # default rule BJ-2021: pass only when all five items score 20
    expected = one(spark, """
        select count(distinct assessment_id) from silver.assessment_detox_items
        where is_current and item1_test_negative = 20 and item2_medication_stopped = 20
          and item3_acute_resolved = 20 and item4_no_protracted = 20 and item5_no_psychiatric = 20""")
    assert one(spark, "select count(*) from gold.fct_detox_assessment where is_pass") == expected
    assert one(spark, "select count(*) from gold.fct_detox_assessment") == one(
        spark, "select count(distinct assessment_id) from silver.assessment_detox_items where is_current")
    assert one(spark, "select count(*) from gold.fct_detox_assessment where is_pass and total_score != 100") == 0


def test_hiv_coverage_window_matches_silver(built, spark):
    expected = one(spark, """
        select count(distinct a.admission_id)
        from silver.admission a join silver.infectious_screening s
          on a.admission_id = s.admission_id and s.is_current
        where a.is_current and s.hiv_screen is not null and s.hiv_screen != '9'
          and s.screening_date between a.admitted_on and date_add(a.admitted_on, 30)""")
    assert one(spark, "select count(*) from gold.fct_infectious_screening_coverage where is_hiv_screened") == expected


def test_data_issues_list_overlaps_and_bad_releases(built, spark):
    overlaps = {f"{r[0]} & {r[1]}" for r in spark.sql("""
        select a.zone_placement_id, b.zone_placement_id
        from silver.zone_placement a join silver.zone_placement b
          on a.person_pk = b.person_pk and a.zone_placement_id < b.zone_placement_id
         and a.entered_on < b.left_on and b.entered_on < a.left_on
        where a.is_current and b.is_current""").collect()}
    flagged = {r[0] for r in spark.sql("""select record_key from gold.fct_data_issues
                                           where issue_type = 'overlapping_zone_placement'""").collect()}
    assert overlaps <= flagged
    assert one(spark, "select count(*) from gold.fct_data_issues where issue_type = 'release_before_admission'") == one(
        spark, "select count(*) from silver.admission where is_current and released_on < admitted_on")
    # flagged records are not dropped from the other marts
    assert one(spark, "select count(*) from gold.fct_zone_stay_durations") == one(spark, """
        select count(*) from gold_staging.int_zone_stays where entered_on <= as_of_date""")


def test_every_indicator_points_to_an_existing_column(built, spark, settings):
    registry = yaml.safe_load((settings.dbt_dir / "indicators" / "indicators.yml").read_text(encoding="utf-8"))
    ids = [i["id"] for i in registry["indicators"]]
    assert len(ids) == len(set(ids))
    for ind in registry["indicators"]:
        for key in ("name_zh", "name_en", "definition", "formula", "grain", "owner", "direction_of_good", "official"):
            assert key in ind, f"{ind['id']} lacks {key}"
        assert ind["direction_of_good"] in ("up", "down", "none")
        if not ind["official"]:
            assert ind.get("note"), f"{ind['id']}: unofficial formula needs a note"
        cols = spark.table(f"gold.{ind['model']}").columns
        assert ind["column"] in cols, f"{ind['id']}: {ind['model']}.{ind['column']} missing"
