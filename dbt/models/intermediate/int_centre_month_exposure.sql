{#- Person-days and people present per centre and calendar month: the denominators of event rates. -#}
with zone_days as (
    select * from {{ ref('int_zone_days_expanded') }}
),

final as (
    select
        centre,
        cast(date_trunc('month', census_date) as date) as month,
        count(*) as person_days,
        count(distinct person_pk) as people_present,
        count(*) / count(distinct census_date) as average_population
    from zone_days
    group by centre, cast(date_trunc('month', census_date) as date)
)

select * from final
