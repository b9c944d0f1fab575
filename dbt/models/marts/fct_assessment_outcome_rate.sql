{#- 诊断评估合格率 and outcome proposal rates (提前解除 / 延长 / 社区康复) by centre and month. -#}
with assessments as (
    select * from {{ ref('stg_silver__assessment') }}
),

flagged as (
    select
        centre,
        cast(date_trunc('month', assessment_date) as date) as assessment_month,
        assessment_type in ('06', '07', '08') as is_comprehensive,
        assessment_type = '06' as is_one_year,
        assessment_type in ('07', '08') as is_pre_expiry,
        coalesce(
            detox_result is not null and recovery_result is not null
            and behaviour_result is not null and social_result is not null,
            false
        ) as has_all_results,
        coalesce(
            detox_result = '1' and recovery_result = '1' and behaviour_result = '1',
            false
        ) as is_three_areas_pass,
        coalesce(outcome = '02', false) as is_early_release_proposal,
        coalesce(outcome = '03', false) as is_extension_proposal,
        coalesce(outcome = '04', false) as is_community_rehab_recommendation
    from assessments
    where assessment_date is not null
),

final as (
    select
        centre,
        assessment_month,
        count(*) as assessments,
        sum(cast(is_comprehensive and has_all_results as int)) as comprehensive_assessments,
        sum(cast(is_comprehensive and has_all_results and is_three_areas_pass as int)) as comprehensive_passed,
        {{ safe_rate('sum(cast(is_comprehensive and has_all_results and is_three_areas_pass as int))',
                     'sum(cast(is_comprehensive and has_all_results as int))') }} as assessment_pass_rate,
        sum(cast(is_one_year as int)) as one_year_assessments,
        sum(cast(is_one_year and is_early_release_proposal as int)) as early_release_proposals,
        {{ safe_rate('sum(cast(is_one_year and is_early_release_proposal as int))',
                     'sum(cast(is_one_year as int))') }} as early_release_proposal_rate,
        sum(cast(is_pre_expiry as int)) as pre_expiry_assessments,
        sum(cast(is_pre_expiry and is_extension_proposal as int)) as extension_proposals,
        {{ safe_rate('sum(cast(is_pre_expiry and is_extension_proposal as int))',
                     'sum(cast(is_pre_expiry as int))') }} as extension_proposal_rate,
        sum(cast(is_comprehensive and is_community_rehab_recommendation as int)) as community_rehab_recommendations,
        {{ safe_rate('sum(cast(is_comprehensive and is_community_rehab_recommendation as int))',
                     'sum(cast(is_comprehensive as int))') }} as community_rehab_recommendation_rate
    from flagged
    group by centre, assessment_month
)

select * from final
