{#-
  Gold check (severity error: a failure stops the build and publication): the daily census equals the
  people present according to the admissions in silver (admitted on or before the day, not released by
  it), per centre and day. Returns the days that differ.
-#}
{{ config(severity='error') }}

with census as (
    select
        census_date,
        centre,
        sum(population) as census
    from {{ ref('fct_daily_population') }}
    group by census_date, centre
),

present as (
    select
        c.census_date,
        c.centre,
        count(distinct a.person_pk) as present
    from census as c
    inner join {{ ref('stg_silver__admission') }} as a
        on
            c.centre = a.centre
            and a.admitted_on <= c.census_date
            and (a.released_on is null or a.released_on > c.census_date)
            and (a.released_on is null or a.released_on >= a.admitted_on)
    group by c.census_date, c.centre
),

final as (
    select
        c.census_date,
        c.centre,
        c.census,
        coalesce(p.present, 0) as present
    from census as c
    left join present as p on c.census_date = p.census_date and c.centre = p.centre
    where c.census != coalesce(p.present, 0)
)

select * from final
