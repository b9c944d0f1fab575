{#- Data-quality findings, one row per issue. Records stay in every other model; this only lists them. -#}
with stays as (
    select * from {{ ref('int_zone_stays') }}
),

admissions as (
    select * from {{ ref('stg_silver__admission') }}
),

detox as (
    select * from {{ ref('fct_detox_assessment') }}
),

headers as (
    select * from {{ ref('stg_silver__assessment') }}
),

areas as (
    select * from {{ ref('fct_assessment_areas') }}
),

area_items as (
    select * from {{ ref('int_assessment_area_items') }}
),

census_checks as (
    select * from {{ ref('int_admission_census_check') }}
),

stay_spans as (
    select
        zone_placement_id,
        admission_id,
        person_pk,
        centre,
        zone,
        entered_on,
        coalesce(left_on, next_entered_on, released_on, cast('9999-12-31' as date)) as span_end_on
    from stays
    where entered_on is not null
),

zone_overlaps as (
    select
        'overlapping_zone_placement' as issue_type,
        'error' as severity,
        'int_zone_stays' as source_model,
        concat(a.zone_placement_id, ' & ', b.zone_placement_id) as record_key,
        a.person_pk,
        a.admission_id,
        a.centre,
        greatest(a.entered_on, b.entered_on) as issue_date,
        concat(
            'Zone stays ', a.zone_placement_id, ' (zone ', a.zone, ', from ', a.entered_on, ') and ',
            b.zone_placement_id, ' (zone ', b.zone, ', from ', b.entered_on, ') of the same person overlap'
        ) as description
    from stay_spans as a
    inner join stay_spans as b
        on
            a.person_pk = b.person_pk
            and a.zone_placement_id < b.zone_placement_id
            and a.entered_on < b.span_end_on
            and a.span_end_on > b.entered_on
),

stay_reversed as (
    select
        'zone_left_before_entered' as issue_type,
        'error' as severity,
        'stg_silver__zone_placement' as source_model,
        zone_placement_id as record_key,
        person_pk,
        admission_id,
        centre,
        left_on as issue_date,
        concat('Zone stay left on ', left_on, ' before it was entered on ', entered_on) as description
    from stays
    where left_on < entered_on
),

release_before_admission as (
    select
        'release_before_admission' as issue_type,
        'error' as severity,
        'stg_silver__admission' as source_model,
        admission_id as record_key,
        person_pk,
        admission_id,
        centre,
        released_on as issue_date,
        concat('Released on ', released_on, ' before admission on ', admitted_on) as description
    from admissions
    where released_on < admitted_on
),

detox_incomplete as (
    select
        'detox_assessment_missing_items' as issue_type,
        'error' as severity,
        'fct_detox_assessment' as source_model,
        assessment_id as record_key,
        person_pk,
        admission_id,
        centre,
        assessment_date as issue_date,
        concat('生理脱毒 assessment has ', items_recorded, ' of 5 item scores recorded') as description
    from detox
    where not is_complete
),

detox_unknown_rule as (
    select
        'detox_unknown_rule_version' as issue_type,
        'warning' as severity,
        'fct_detox_assessment' as source_model,
        assessment_id as record_key,
        person_pk,
        admission_id,
        centre,
        assessment_date as issue_date,
        concat('Rule version ', coalesce(source_rule_version, '(missing)'), ' is not in var detox_rules; scored with ', rule_version) as description
    from detox
    where not is_known_rule
),

detox_without_items as (
    select
        'detox_assessment_without_items' as issue_type,
        'warning' as severity,
        'stg_silver__assessment' as source_model,
        h.assessment_id as record_key,
        h.person_pk,
        h.admission_id,
        h.centre,
        h.assessment_date as issue_date,
        '生理脱毒阶段性评价 (type 02) has no item records (ZD_SLTD)' as description
    from headers as h
    left join detox as d
        on h.assessment_id = d.assessment_id
    where h.assessment_type = '02' and d.assessment_id is null
),

recovery_incomplete as (
    select
        'recovery_assessment_missing_items' as issue_type,
        'error' as severity,
        'int_assessment_area_items' as source_model,
        i.assessment_id as record_key,
        a.person_pk,
        a.admission_id,
        a.centre,
        a.assessment_date as issue_date,
        concat('身心康复 assessment has ', i.recovery_items_recorded, ' of 5 item scores recorded') as description
    from area_items as i
    inner join areas as a on i.assessment_id = a.assessment_id
    where i.has_recovery_items and i.recovery_items_recorded < 5
),

comprehensive_incomplete as (
    select
        'comprehensive_assessment_missing_areas' as issue_type,
        'warning' as severity,
        'fct_assessment_areas' as source_model,
        assessment_id as record_key,
        person_pk,
        admission_id,
        centre,
        assessment_date as issue_date,
        concat(
            'Comprehensive assessment (type ', assessment_type, ') has ', areas_assessed,
            ' of 4 areas scored from item records; it is left out of the pass rate'
        ) as description
    from areas
    where is_comprehensive and not has_all_areas
),

census_mismatch as (
    select
        'admission_census_mismatch' as issue_type,
        'warning' as severity,
        'int_admission_census_check' as source_model,
        admission_id as record_key,
        person_pk,
        admission_id,
        centre,
        admitted_on as issue_date,
        concat(
            'Admission present ', present_days, ' days per its dates but its zone stays count ', census_days,
            ' days in its centre and ', census_days_other_centre, ' in another (missing, shifted or foreign stays)'
        ) as description
    from census_checks
    where not is_consistent
),

unioned as (
    select * from zone_overlaps
    union all
    select * from stay_reversed
    union all
    select * from release_before_admission
    union all
    select * from detox_incomplete
    union all
    select * from detox_unknown_rule
    union all
    select * from detox_without_items
    union all
    select * from recovery_incomplete
    union all
    select * from comprehensive_incomplete
    union all
    select * from census_mismatch
),

final as (
    select
        sha2(concat_ws('|', issue_type, record_key), 256) as issue_id,
        issue_type,
        severity,
        source_model,
        record_key,
        person_pk,
        admission_id,
        centre,
        issue_date,
        description
    from unioned
)

select * from final
