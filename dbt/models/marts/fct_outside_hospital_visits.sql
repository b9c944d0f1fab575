{#- 戒毒医疗: outside-hospital visits (所外就医: outpatient, emergency, inpatient) by centre and month. -#}
with visits as (
    select * from {{ ref('stg_silver__outside_treatment') }}
    where admitted_on is not null
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
        cast(date_trunc('month', v.admitted_on) as date) as month,
        count(*) as visits,
        sum(cast(v.visit_type = '2' as int)) as emergency_visits,
        sum(cast(v.visit_type = '3' as int)) as inpatient_stays,
        sum(greatest(datediff(coalesce(v.discharged_on, v.admitted_on), v.admitted_on), 0)) as inpatient_days
    from visits as v
    inner join admissions as a on v.admission_id = a.admission_id
    group by a.centre, cast(date_trunc('month', v.admitted_on) as date)
),

final as (
    select
        e.centre,
        e.month,
        e.person_days,
        cast(coalesce(c.visits, 0) as bigint) as outside_visits,
        cast(coalesce(c.emergency_visits, 0) as bigint) as emergency_visits,
        cast(coalesce(c.inpatient_stays, 0) as bigint) as inpatient_stays,
        cast(coalesce(c.inpatient_days, 0) as bigint) as inpatient_days,
        {{ safe_rate('1000 * coalesce(c.visits, 0)', 'e.person_days') }} as outside_visits_per_1000_person_days
    from exposure as e
    left join counts as c on e.centre = c.centre and e.month = c.month
)

select * from final
