{#- 安全六无: per centre and month, the six "no" conditions from the incident register, and incident rates. -#}
with incidents as (
    select * from {{ ref('stg_silver__incident') }}
    where occurred_at is not null
),

exposure as (
    select * from {{ ref('int_centre_month_exposure') }}
),

counts as (
    select
        centre,
        cast(date_trunc('month', occurred_at) as date) as month,
        count(*) as incidents,
        sum(cast(incident_type = '01' as int)) as drugs_entering,
        sum(cast(incident_type = '02' as int)) as escapes,
        sum(cast(incident_type = '03' as int)) as abnormal_deaths,
        sum(cast(incident_type = '04' as int)) as criminal_cases,
        sum(cast(incident_type = '05' as int)) as production_accidents,
        sum(cast(incident_type = '06' as int)) as major_epidemics
    from incidents
    group by centre, cast(date_trunc('month', occurred_at) as date)
),

joined as (
    select
        e.centre,
        e.month,
        e.person_days,
        cast(coalesce(c.incidents, 0) as bigint) as incidents,
        cast(coalesce(c.drugs_entering, 0) as bigint) as drugs_entering,
        cast(coalesce(c.escapes, 0) as bigint) as escapes,
        cast(coalesce(c.abnormal_deaths, 0) as bigint) as abnormal_deaths,
        cast(coalesce(c.criminal_cases, 0) as bigint) as criminal_cases,
        cast(coalesce(c.production_accidents, 0) as bigint) as production_accidents,
        cast(coalesce(c.major_epidemics, 0) as bigint) as major_epidemics
    from exposure as e
    left join counts as c on e.centre = c.centre and e.month = c.month
),

final as (
    select
        *,
        drugs_entering + escapes + abnormal_deaths + criminal_cases + production_accidents
        + major_epidemics as liuwu_incidents,
        drugs_entering = 0 as no_drugs_entering,
        escapes = 0 as no_escapes,
        abnormal_deaths = 0 as no_abnormal_deaths,
        criminal_cases = 0 as no_criminal_cases,
        production_accidents = 0 as no_production_accidents,
        major_epidemics = 0 as no_major_epidemic,
        drugs_entering + escapes + abnormal_deaths + criminal_cases + production_accidents
        + major_epidemics = 0 as is_liuwu_met,
        {{ safe_rate('1000 * incidents', 'person_days') }} as incidents_per_1000_person_days,
        {{ safe_rate('1000 * (drugs_entering + escapes + abnormal_deaths + criminal_cases '
                     ~ '+ production_accidents + major_epidemics)', 'person_days') }}
            as liuwu_incidents_per_1000_person_days
    from joined
)

select * from final
