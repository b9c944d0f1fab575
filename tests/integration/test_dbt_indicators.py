"""dbt indicators (four zones, five centres, assessment areas, 六无, 操守保持率, data issues, gold gate).

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
        "assessment_pass_rate", "early_release_proposal_rate", "on_time_release_rate", "extension_proposal_rate",
        "community_rehab_recommendation_rate",
    ],
    "fct_education_hours": ["plan_attainment_rate"],
    "fct_exam_pass_rate": ["exam_pass_rate"],
    "fct_psych_test_coverage_rate": ["psych_test_coverage_rate"],
    "fct_fitness_attainment": ["fitness_attainment_rate"],
    "fct_training_participation": ["training_participation_rate"],
    "fct_safety_liuwu_rate": ["liuwu_met_rate"],
    "fct_abstinence_rate": ["abstinence_rate", "follow_up_rate"],
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


def test_census_equals_people_present_in_silver(built, spark):
    """Per silver admissions; an admission whose zone stays disagree with its dates (a flagged data issue)
    may move the census by at most one on the day."""
    day = "date'2026-06-01'"
    present = f"""a.is_current and a.admitted_on <= {day}
                  and (a.released_on is null or a.released_on > {day}) and a.person_pk is not null"""
    expected = one(spark, f"select count(distinct a.person_pk) from silver.admission a where {present}")
    # Counted in people, as the census is: one person can have two flagged admissions (an old one never
    # closed and a new one).
    flagged = one(spark, f"""
        select count(distinct a.person_pk) from silver.admission a join gold.fct_data_issues i
          on i.issue_type = 'admission_census_mismatch' and i.record_key = a.admission_id where {present}""")
    flagged_in_census = one(spark, f"""
        select count(distinct z.person_pk) from gold_staging.int_zone_days_expanded z join gold.fct_data_issues i
          on i.issue_type = 'admission_census_mismatch' and i.record_key = z.admission_id
        where z.census_date = {day}""")
    got = one(spark, f"select sum(population) from gold.fct_daily_population where census_date = {day}")
    assert got - flagged_in_census == expected - flagged


def test_liuwu_follows_the_incident_register(built, spark):
    by_month = {(r[0], r[1]): r[2] for r in spark.sql("""
        select centre, cast(date_trunc('month', occurred_at) as date), count(*) from silver.incident
        where is_current and incident_type in ('01', '02', '03', '04', '05', '06') group by 1, 2""").collect()}
    assert by_month, "the generated incidents should include some 六无 incidents"
    gold = {(r[0], r[1]): (r[2], r[3]) for r in spark.sql(
        "select centre, month, liuwu_incidents, is_liuwu_met from gold.fct_safety_liuwu").collect()}
    met = [k for k, (n, ok) in gold.items() if ok]
    assert met and len(met) < len(gold), "六无 should be met in some centre-months and missed in others"
    for key, (n, ok) in gold.items():
        assert n == by_month.get(key, 0) and ok == (by_month.get(key, 0) == 0)


def test_abstinence_counts_follow_the_follow_ups(built, spark):
    relapsed_1y = one(spark, """
        select count(distinct a.admission_id) from silver.admission a
        join silver.post_release_followup f on f.admission_id = a.admission_id and f.is_current
        where a.is_current and a.released_on >= a.admitted_on
          and add_months(a.released_on, 12) <= (select max(admitted_on) from silver.admission where is_current)
          and f.result in ('2', '5') and f.followup_date > a.released_on
          and (f.followup_date <= add_months(a.released_on, 12) or cast(f.milestone as int) <= 12)""")
    got = spark.sql("select sum(relapsed), sum(abstinent) from gold.fct_abstinence_rate where horizon_years = 1") \
        .collect()[0]
    assert got[0] == relapsed_1y
    assert got[1] > 0 and relapsed_1y > 0


def test_assessment_areas_cover_every_header(built, spark):
    assert one(spark, "select count(*) from gold.fct_assessment_areas") == one(
        spark, "select count(*) from silver.assessment where is_current")
    recovery_pass = one(spark, """
        select count(distinct r.assessment_id) from silver.assessment_recovery_items r
        join silver.assessment h on h.assessment_id = r.assessment_id and h.is_current
        where r.is_current and item1_body_function + item2_fitness + item3_psych + item4_relapse + item5_theory >= 100""")
    assert one(spark, "select count(*) from gold.fct_assessment_areas where recovery_is_pass") == recovery_pass


def test_registry_renders_the_dbt_docs_of_every_indicator_column(settings):
    import json

    from smartrehab.cli import dbt_parse

    dbt_parse(settings)
    manifest = json.loads((settings.dbt_dir / "target" / "manifest.json").read_text(encoding="utf-8"))
    registry = yaml.safe_load((settings.dbt_dir / "indicators" / "indicators.yml").read_text(encoding="utf-8"))
    for ind in registry["indicators"]:
        col = manifest["nodes"][f"model.smartrehab.{ind['model']}"]["columns"].get(ind["column"], {})
        assert ind["definition"] in col.get("description", ""), f"{ind['id']}: docs not from the registry"
        assert ind["name_zh"] in col["description"]


def test_dbt_docs_are_generated(built, settings):
    from smartrehab.pipeline import dbt_docs

    out = dbt_docs(settings)
    from pathlib import Path

    for name in ("index.html", "catalog.json", "manifest.json"):
        assert (Path(out["docs_dir"]) / name).stat().st_size > 0
    import json

    catalog = json.loads((Path(out["docs_dir"]) / "catalog.json").read_text(encoding="utf-8"))
    assert "model.smartrehab.fct_safety_liuwu" in catalog["nodes"]


def test_gold_gate_passes_and_stops_on_a_rate_out_of_range(built, spark, settings):
    from smartrehab.pipeline import quality_gate
    from smartrehab.quality import QualityGateFailed

    assert quality_gate(settings, "gold")["failed"] == 0
    spark.sql("insert into gold.fct_exam_pass_rate select 'ZZ99', date'1999-01-01', 1, 2, 2.0")
    try:
        with pytest.raises(QualityGateFailed, match="fct_exam_pass_rate"):
            quality_gate(settings, "gold")
    finally:
        spark.sql("delete from gold.fct_exam_pass_rate where centre = 'ZZ99'")


def _render_module(settings):
    import importlib.util

    spec = importlib.util.spec_from_file_location("render", settings.dbt_dir / "indicators" / "render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    return render


def _registry(settings) -> list[dict]:
    return yaml.safe_load((settings.dbt_dir / "indicators" / "indicators.yml").read_text(encoding="utf-8"))["indicators"]


def test_model_yaml_lists_every_gold_column_with_its_type(built, spark, settings):
    """The Superset datasets and the export dictionary take columns and types from the dbt YAML:
    it must match the tables dbt built."""
    models = _render_module(settings).load_models()
    for name in sorted({ind["model"] for ind in _registry(settings)}):
        actual = [(f.name, f.dataType.jsonValue()) for f in spark.table(f"gold.{name}").schema.fields]
        documented = [(c["name"], c.get("data_type")) for c in models[name]["columns"]]
        assert documented == actual, f"dbt/models/marts YAML of {name} does not match gold.{name}"


def test_superset_metric_of_each_indicator_reaggregates_its_column(built, spark, settings):
    """Each registry metric, evaluated over one row of its model, gives that row's indicator value;
    so summed over any filter it is the indicator over the union (num / den, not an average of rates)."""
    render = _render_module(settings)
    unit_interval = {name: {c["name"] for c in m.get("columns") or [] if "unit_interval" in (c.get("data_tests") or [])}
                     for name, m in render.load_models().items()}
    checked = 0
    for ind in _registry(settings):
        col = f"`{ind['column']}`"
        value = {"boolean": f"cast({col} as int)", "string": "1"}.get(
            spark.table(f"gold.{ind['model']}").schema[ind["column"]].dataType.typeName(), f"cast({col} as double)")
        rows = spark.sql(f"""
            select cast(({ind['superset_metric']}) as double) as metric, first({value}) as value
            from (select *, monotonically_increasing_id() as _row from gold.{ind['model']})
            group by _row""").collect()
        assert rows, f"gold.{ind['model']} is empty: cannot check {ind['id']}"
        for r in rows:
            if r.value is None:
                continue
            assert r.metric == pytest.approx(r.value, rel=1e-6, abs=1e-9), (ind["id"], r)
            checked += 1
        total = spark.sql(f"select cast(({ind['superset_metric']}) as double) from gold.{ind['model']}").collect()[0][0]
        assert total is None or total >= 0, (ind["id"], total)
        if ind["column"] in unit_interval.get(ind["model"], ()):
            assert total is None or total <= 1, (ind["id"], total)
    assert checked > 0
