-- What gold holds for a kpi_monthly package (see reconcile__population_daily.sql): the rows of each
-- indicator's model in the month (`rows:indicator_id=<id>`), the centre-zones of the month's census and
-- the census total on the month's last census day.
with census as (
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
    from census
),

indicator_rows as (
    {%- for ind in indicators %}
        select
            'indicators' as file_id,
            'rows:indicator_id={{ ind.id }}' as check_name,
            count(*) as check_value
        from {{ gold }}.{{ ind.model }}
        where cast({{ ind.month_column }} as date) = date '{{ first }}'
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

final as (
    select
        file_id,
        check_name,
        check_value
    from indicator_rows
    union all
    select
        'zones' as file_id,
        'rows' as check_name,
        count(distinct centre, zone) as check_value
    from census
    union all
    select
        'zones' as file_id,
        'sum:population_month_end' as check_name,
        coalesce(sum(c.population), 0) as check_value
    from census as c
    inner join last_day as l
        on c.census_date = l.census_date
)

select * from final
