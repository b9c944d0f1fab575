{#- 生理脱毒评估合格率 by centre and month. -#}
with assessments as (
    select * from {{ ref('fct_detox_assessment') }}
),

final as (
    select
        centre,
        assessment_month,
        count(*) as assessments,
        sum(cast(is_complete as int)) as complete_assessments,
        sum(cast(is_pass as int)) as passed,
        {{ safe_rate('sum(cast(is_pass as int))', 'sum(cast(is_complete as int))') }} as pass_rate
    from assessments
    where assessment_month is not null
    group by centre, assessment_month
)

select * from final
