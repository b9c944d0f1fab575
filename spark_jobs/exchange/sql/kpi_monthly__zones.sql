-- kpi_monthly / data/zones.csv: per centre and zone, the census on the last census day of the month
-- in gold (the month's last day once the month is closed) and the average daily census of the month.
with days as (
    select
        census_date,
        centre,
        zone,
        population
    from {{ gold }}.fct_daily_population
    where census_date between date '{{ first }}' and date '{{ last }}'
),

last_day as (
    select max(census_date) as census_date
    from days
),

final as (
    select
        date '{{ first }}' as month,
        d.centre,
        d.zone,
        cast(sum(case when d.census_date = l.census_date then d.population else 0 end) as bigint)
            as population_month_end,
        avg(d.population) as population_average
    from days as d
    cross join last_day as l
    group by d.centre, d.zone
)

select * from final
