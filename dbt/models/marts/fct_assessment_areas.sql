{#- The four areas of the diagnostic assessment (诊断评估) per assessment event, from item-level records. -#}
{%- set versions = assessment_rules().keys() | list -%}
{%- set default_version = var('assessment_default_rule_version', 'BJ-2021') -%}
with headers as (
    select * from {{ ref('stg_silver__assessment') }}
),

detox as (
    select * from {{ ref('fct_detox_assessment') }}
),

areas as (
    select * from {{ ref('int_assessment_area_items') }}
),

joined as (
    select
        h.assessment_id,
        h.admission_id,
        h.person_pk,
        h.centre,
        h.assessment_type,
        h.assessment_date,
        h.outcome,
        h.rule_version as source_rule_version,
        coalesce(h.rule_version in ('{{ versions | join("', '") }}'), false) as is_known_rule,
        case
            when h.rule_version in ('{{ versions | join("', '") }}') then h.rule_version
            else '{{ default_version }}'
        end as rule_version,
        d.assessment_id is not null as has_detox_items,
        d.is_complete as detox_is_complete,
        d.total_score as detox_total,
        d.is_pass as detox_is_pass,
        coalesce(a.has_recovery_items, false) as has_recovery_items,
        a.recovery_items_recorded,
        a.recovery_total,
        coalesce(a.has_behaviour_items, false) as has_behaviour_items,
        a.avg_monthly_score,
        a.serious_violations,
        a.drug_use_inside,
        a.escape_attempt,
        coalesce(a.has_social_items, false) as has_social_items,
        a.social_total
    from headers as h
    left join detox as d on h.assessment_id = d.assessment_id
    left join areas as a on h.assessment_id = a.assessment_id
),

scored as (
    select
        *,
        case
            when has_recovery_items and recovery_items_recorded = 5
                then recovery_total >= {{ assessment_rule_param('rule_version', 'recovery_pass_score') }}
            when has_recovery_items then false
        end as recovery_is_pass,
        case
            when has_behaviour_items
                then coalesce(
                    avg_monthly_score >= {{ assessment_rule_param('rule_version', 'behaviour_min_avg_monthly') }}
                    and coalesce(serious_violations, 0)
                    <= {{ assessment_rule_param('rule_version', 'behaviour_max_serious_violations') }}
                    and coalesce(drug_use_inside, '0') != '1'
                    and coalesce(escape_attempt, '0') != '1',
                    false
                )
        end as behaviour_is_pass,
        case
            when has_social_items and social_total >= {{ assessment_rule_param('rule_version', 'social_good_min_score') }}
                then '1'
            when has_social_items then '2'
        end as social_result
    from joined
),

final as (
    select
        assessment_id,
        admission_id,
        person_pk,
        centre,
        assessment_type,
        assessment_date,
        cast(date_trunc('month', assessment_date) as date) as assessment_month,
        assessment_type in ('06', '07', '08') as is_comprehensive,
        rule_version,
        source_rule_version,
        is_known_rule,
        has_detox_items,
        detox_total,
        case when has_detox_items then detox_is_pass end as detox_is_pass,
        recovery_total,
        recovery_is_pass,
        avg_monthly_score as behaviour_avg_monthly_score,
        serious_violations as behaviour_serious_violations,
        behaviour_is_pass,
        social_total,
        social_result,
        cast(has_detox_items and detox_is_complete as int)
        + cast(has_recovery_items and recovery_items_recorded = 5 as int)
        + cast(has_behaviour_items as int)
        + cast(has_social_items as int) as areas_assessed,
        coalesce(
            has_detox_items and detox_is_complete and has_recovery_items and recovery_items_recorded = 5
            and has_behaviour_items and has_social_items,
            false
        ) as has_all_areas,
        coalesce(detox_is_pass and recovery_is_pass and behaviour_is_pass, false) as is_three_areas_pass,
        outcome,
        coalesce(outcome = '01', false) as is_on_time_release,
        coalesce(outcome = '02', false) as is_early_release_proposal,
        coalesce(outcome = '03', false) as is_extension_proposal,
        coalesce(outcome = '04', false) as is_community_rehab_recommendation
    from scored
)

select * from final
