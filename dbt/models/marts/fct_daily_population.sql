{#- Census: people present at the end of each day, by centre and zone, with zero rows kept. -#}
with zone_days as (
    select * from {{ ref('int_zone_days_expanded') }}
),

days as (
    select explode(sequence(min(census_date), max(census_date))) as census_date
    from zone_days
),

centres as (
    select distinct centre from zone_days
),

zones as (
    select explode(array('01', '02', '03', '04')) as zone_code
),

spine as (
    select
        d.census_date,
        c.centre,
        z.zone_code as zone
    from days as d
    cross join centres as c
    cross join zones as z
),

counts as (
    select
        census_date,
        centre,
        zone,
        count(distinct person_pk) as population
    from zone_days
    group by census_date, centre, zone
),

final as (
    select
        s.census_date,
        s.centre,
        s.zone,
        case s.zone
            when '01' then '生理脱毒区'
            when '02' then '教育适应区'
            when '03' then '康复巩固区'
            when '04' then '回归指导区'
        end as zone_label,
        coalesce(c.population, 0) as population
    from spine as s
    left join counts as c
        on
            s.census_date = c.census_date
            and s.centre = c.centre
            and s.zone = c.zone
)

select * from final
