{#- Person-days and people present per centre and calendar month (every month from the centre's first to
    its last census month, zero-filled): the denominators of event rates. -#}
with zone_days as (
    select * from {{ ref('int_zone_days_expanded') }}
),

counts as (
    select
        centre,
        cast(date_trunc('month', census_date) as date) as month,
        count(*) as person_days,
        count(distinct person_pk) as people_present,
        count(*) / count(distinct census_date) as average_population
    from zone_days
    group by centre, cast(date_trunc('month', census_date) as date)
),

spine as (
    select
        centre,
        explode(sequence(min(month), max(month), interval 1 month)) as month
    from counts
    group by centre
),

final as (
    select
        s.centre,
        s.month,
        coalesce(c.person_days, 0) as person_days,
        coalesce(c.people_present, 0) as people_present,
        coalesce(c.average_population, 0) as average_population
    from spine as s
    left join counts as c on s.centre = c.centre and s.month = c.month
)

select * from final
