{#- 床位使用率: end-of-day population over the configured bed capacity, per day and centre. -#}
with population as (
    select * from {{ ref('fct_daily_population') }}
),

by_centre as (
    select
        census_date,
        centre,
        sum(population) as population
    from population
    group by census_date, centre
),

with_capacity as (
    select
        census_date,
        centre,
        population,
        {{ bed_capacity_case('centre') }} as bed_capacity
    from by_centre
),

final as (
    select
        census_date,
        centre,
        population,
        bed_capacity,
        {{ safe_rate('population', 'bed_capacity') }} as occupancy_rate
    from with_capacity
)

select * from final
