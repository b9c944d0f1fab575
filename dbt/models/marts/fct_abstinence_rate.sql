{#- 操守保持率 at 1, 2 and 3 years after release, by release cohort, centre and last assessment result. -#}
with outcomes as (
    select * from {{ ref('int_release_outcomes') }}
    where is_due
),

final as (
    select
        release_cohort,
        centre,
        assessment_result,
        horizon_years,
        count(*) as releases,
        sum(cast(is_abstinent or is_relapsed as int)) as releases_with_known_status,
        sum(cast(is_abstinent as int)) as abstinent,
        sum(cast(is_relapsed as int)) as relapsed,
        {{ safe_rate('sum(cast(is_abstinent as int))', 'sum(cast(is_abstinent or is_relapsed as int))') }}
            as abstinence_rate,
        {{ safe_rate('sum(cast(is_abstinent or is_relapsed as int))', 'count(*)') }} as follow_up_rate
    from outcomes
    group by release_cohort, centre, assessment_result, horizon_years
)

select * from final
