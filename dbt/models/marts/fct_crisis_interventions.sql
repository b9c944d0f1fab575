{#- 心理矫治: crisis interventions by centre and month, per 1,000 person-days present. -#}
with crises as (
    select * from {{ ref('stg_silver__crisis_intervention') }}
    where detected_at is not null
),

admissions as (
    select * from {{ ref('stg_silver__admission') }}
),

exposure as (
    select * from {{ ref('int_centre_month_exposure') }}
),

counts as (
    select
        a.centre,
        cast(date_trunc('month', c.detected_at) as date) as month,
        count(*) as crises,
        sum(cast(c.crisis_level = '1' as int)) as high_risk_crises,
        sum(cast(c.restraint_used = '1' as int)) as crises_with_restraint
    from crises as c
    inner join admissions as a on c.admission_id = a.admission_id
    group by a.centre, cast(date_trunc('month', c.detected_at) as date)
),

final as (
    select
        e.centre,
        e.month,
        e.person_days,
        cast(coalesce(c.crises, 0) as bigint) as crises,
        cast(coalesce(c.high_risk_crises, 0) as bigint) as high_risk_crises,
        cast(coalesce(c.crises_with_restraint, 0) as bigint) as crises_with_restraint,
        {{ safe_rate('1000 * coalesce(c.crises, 0)', 'e.person_days') }} as crises_per_1000_person_days
    from exposure as e
    left join counts as c on e.centre = c.centre and e.month = c.month
)

select * from final
