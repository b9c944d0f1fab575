-- What gold holds for a population_daily package: one row per (file, measure). reconcile.py computes
-- the same measures from the package's CSV files: `rows` (data rows) and `sum:<column>`. movements.csv
-- has a row for every centre-day of the census (zero movements included), so its rows are counted on the
-- census and its totals on the movement mart.
select
    'population' as file_id,
    'rows' as check_name,
    count(*) as check_value
from {{ gold }}.fct_daily_population
where census_date between date '{{ first }}' and date '{{ last }}'
union all
select
    'population' as file_id,
    'sum:population' as check_name,
    coalesce(sum(population), 0) as check_value
from {{ gold }}.fct_daily_population
where census_date between date '{{ first }}' and date '{{ last }}'
union all
select
    'movements' as file_id,
    'rows' as check_name,
    count(distinct census_date, centre) as check_value
from {{ gold }}.fct_daily_population
where census_date between date '{{ first }}' and date '{{ last }}'
union all
select
    'movements' as file_id,
    'sum:admissions' as check_name,
    coalesce(sum(admissions), 0) as check_value
from {{ gold }}.fct_zone_movements
where movement_date between date '{{ first }}' and date '{{ last }}'
union all
select
    'movements' as file_id,
    'sum:transfers' as check_name,
    coalesce(sum(transfers), 0) as check_value
from {{ gold }}.fct_zone_movements
where movement_date between date '{{ first }}' and date '{{ last }}'
union all
select
    'movements' as file_id,
    'sum:releases' as check_name,
    coalesce(sum(releases), 0) as check_value
from {{ gold }}.fct_zone_movements
where movement_date between date '{{ first }}' and date '{{ last }}'
