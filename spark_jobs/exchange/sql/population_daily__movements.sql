-- population_daily / data/movements.csv: admissions, zone transfers and releases per day and centre.
-- One row for every day and centre the census covers (gold.fct_daily_population): a day without any
-- movement is a valid day with zero movements, not missing data. gold.fct_zone_movements runs only from
-- the first to the last movement day, so the days of the census after (or before) it come out as zeros
-- here. A movement on a centre-day the census does not cover is not in this file, and the
-- reconciliation (sums over fct_zone_movements) then blocks the package.
with census_days as (
    select distinct
        census_date as movement_date,
        centre
    from {{ gold }}.fct_daily_population
    where census_date between date '{{ first }}' and date '{{ last }}'
),

movements as (
    select
        movement_date,
        centre,
        admissions,
        transfers,
        releases
    from {{ gold }}.fct_zone_movements
    where movement_date between date '{{ first }}' and date '{{ last }}'
),

final as (
    select
        d.movement_date,
        d.centre,
        coalesce(m.admissions, 0) as admissions,
        coalesce(m.transfers, 0) as transfers,
        coalesce(m.releases, 0) as releases
    from census_days as d
    left join movements as m
        on
            d.movement_date = m.movement_date
            and d.centre = m.centre
)

select * from final
