{#- 诊断评估合格率 and outcome rates (按期解除 / 提前解除 / 延长 / 社区康复) by centre and month, from the four areas. -#}
with assessments as (
    select * from {{ ref('fct_assessment_areas') }}
    where assessment_date is not null
),

flagged as (
    select
        centre,
        assessment_month,
        is_comprehensive,
        assessment_type = '06' as is_one_year,
        assessment_type in ('07', '08') as is_pre_expiry,
        has_all_areas,
        is_three_areas_pass,
        is_on_time_release,
        is_early_release_proposal,
        is_extension_proposal,
        is_community_rehab_recommendation
    from assessments
),

final as (
    select
        centre,
        assessment_month,
        count(*) as assessments,
        sum(cast(is_comprehensive and has_all_areas as int)) as comprehensive_assessments,
        sum(cast(is_comprehensive and has_all_areas and is_three_areas_pass as int)) as comprehensive_passed,
        {{ safe_rate('sum(cast(is_comprehensive and has_all_areas and is_three_areas_pass as int))',
                     'sum(cast(is_comprehensive and has_all_areas as int))') }} as assessment_pass_rate,
        sum(cast(is_one_year as int)) as one_year_assessments,
        sum(cast(is_one_year and is_early_release_proposal as int)) as early_release_proposals,
        {{ safe_rate('sum(cast(is_one_year and is_early_release_proposal as int))',
                     'sum(cast(is_one_year as int))') }} as early_release_proposal_rate,
        sum(cast(is_pre_expiry as int)) as pre_expiry_assessments,
        sum(cast(is_pre_expiry and is_on_time_release as int)) as on_time_releases,
        {{ safe_rate('sum(cast(is_pre_expiry and is_on_time_release as int))',
                     'sum(cast(is_pre_expiry as int))') }} as on_time_release_rate,
        sum(cast(is_pre_expiry and is_extension_proposal as int)) as extension_proposals,
        {{ safe_rate('sum(cast(is_pre_expiry and is_extension_proposal as int))',
                     'sum(cast(is_pre_expiry as int))') }} as extension_proposal_rate,
        sum(cast(is_comprehensive as int)) as all_comprehensive_assessments,
        sum(cast(is_comprehensive and is_community_rehab_recommendation as int)) as community_rehab_recommendations,
        {{ safe_rate('sum(cast(is_comprehensive and is_community_rehab_recommendation as int))',
                     'sum(cast(is_comprehensive as int))') }} as community_rehab_recommendation_rate
    from flagged
    group by centre, assessment_month
)

select * from final
