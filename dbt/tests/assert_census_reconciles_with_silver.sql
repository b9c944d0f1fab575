{#-
  Gold check (severity error: a failure stops the build and publication): the daily census reconciles
  with the people present according to the admissions in silver, per centre and day. Admissions whose
  zone stays disagree with their admission and release dates are data issues (fct_data_issues,
  admission_census_mismatch) and are taken out of both sides; they may be at most
  var('census_max_mismatched_share', 0.2) of the admissions. Returns the failing days (or the share).
-#}
{{ config(severity='error') }}

with checks as (
    select * from {{ ref('int_admission_census_check') }}
),

mismatched as (
    select admission_id from checks
    where not is_consistent
),

census as (
    select
        census_date,
        centre,
        sum(population) as census
    from {{ ref('fct_daily_population') }}
    group by census_date, centre
),

census_of_mismatched as (
    select
        z.census_date,
        z.centre,
        count(*) as census
    from {{ ref('int_zone_days_expanded') }} as z
    inner join mismatched as m on z.admission_id = m.admission_id
    group by z.census_date, z.centre
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
            and c.census_date >= a.admitted_on
            and (a.released_on is null or c.census_date < a.released_on)
    left anti join mismatched as m on a.admission_id = m.admission_id
    group by c.census_date, c.centre
),

day_failures as (
    select
        c.census_date,
        c.centre,
        c.census - coalesce(x.census, 0) as census,
        coalesce(p.present, 0) as present,
        cast(null as double) as mismatched_share
    from census as c
    left join census_of_mismatched as x on c.census_date = x.census_date and c.centre = x.centre
    left join present as p on c.census_date = p.census_date and c.centre = p.centre
    where c.census - coalesce(x.census, 0) != coalesce(p.present, 0)
),

share_failure as (
    select
        cast(null as date) as census_date,
        cast(null as string) as centre,
        cast(null as bigint) as census,
        cast(null as bigint) as present,
        avg(cast(not is_consistent as double)) as mismatched_share
    from checks
    having avg(cast(not is_consistent as double)) > {{ var('census_max_mismatched_share', 0.2) }}
)

select * from day_failures
union all
select * from share_failure
