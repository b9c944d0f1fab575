-- population_daily / data/population.csv: the census of each day of the period, per centre and zone
-- (zero rows kept, as gold keeps them). Columns: docs/exchange/packages.yaml.
select
    census_date,
    centre,
    zone,
    population
from {{ gold }}.fct_daily_population
where census_date between date '{{ first }}' and date '{{ last }}'
