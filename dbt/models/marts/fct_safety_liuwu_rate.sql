{#- 六无达标率: share of centre-months meeting all six conditions, per centre and year. -#}
with months as (
    select * from {{ ref('fct_safety_liuwu') }}
),

final as (
    select
        centre,
        year(month) as year,
        count(*) as centre_months,
        sum(cast(is_liuwu_met as int)) as centre_months_met,
        {{ safe_rate('sum(cast(is_liuwu_met as int))', 'count(*)') }} as liuwu_met_rate,
        sum(incidents) as incidents,
        sum(liuwu_incidents) as liuwu_incidents,
        {{ safe_rate('1000 * sum(incidents)', 'sum(person_days)') }} as incidents_per_1000_person_days
    from months
    group by centre, year(month)
)

select * from final
