{#- 教育矫正: education hours delivered against the monthly plan, by centre and month. -#}
{%- set plan = var('education_plan_hours_per_month', 24) -%}
with hours as (
    select * from {{ ref('stg_silver__education_hours_monthly') }}
),

admissions as (
    select * from {{ ref('stg_silver__admission') }}
),

person_months as (
    select
        a.centre,
        to_date(concat(h.month, '01'), 'yyyyMMdd') as month,
        h.admission_id,
        sum(h.hours_total) as hours_total
    from hours as h
    inner join admissions as a on h.admission_id = a.admission_id
    where to_date(concat(h.month, '01'), 'yyyyMMdd') is not null
    group by a.centre, to_date(concat(h.month, '01'), 'yyyyMMdd'), h.admission_id
),

final as (
    select
        centre,
        month,
        count(*) as person_months,
        cast(sum(hours_total) as double) as hours_delivered,
        cast(count(*) * {{ plan }} as double) as hours_planned,
        {{ safe_rate('sum(hours_total)', 'count(*) * ' ~ plan) }} as hours_delivered_vs_plan,
        sum(cast(hours_total >= {{ plan }} as int)) as person_months_meeting_plan,
        {{ safe_rate('sum(cast(hours_total >= ' ~ plan ~ ' as int))', 'count(*)') }} as plan_attainment_rate
    from person_months
    group by centre, month
)

select * from final
