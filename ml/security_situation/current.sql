-- The command centre's current picture: per centre, the latest day with a scored unit, its units per
-- level, the worst unit with its drivers, and how many hours the centre's feeds lag behind the newest
-- feed hour anywhere. `{{ scores }}` is the score table, `{{ silver }}` the silver schema and
-- `{{ insufficient }}` the level of rows without enough input (score.py fills them in).
with latest as (
    select
        centre,
        max(score_date) as score_date
    from {{ scores }}
    where level != '{{ insufficient }}'
    group by centre
),

ranked as (
    select
        s.*,
        row_number() over (partition by s.centre order by s.score desc nulls last, s.unit asc) as rk
    from {{ scores }} as s
    inner join latest as l on s.centre = l.centre and s.score_date = l.score_date
),

feeds as (
    select
        centre,
        max(hour) as last_hour
    from {{ silver }}.feed_unit_hourly
    group by centre
),

clock as (
    select max(hour) as newest_hour
    from {{ silver }}.feed_unit_hourly
)

select
    r.centre,
    r.score_date,
    count(*) as units,
    count(case when r.level = '红' then 1 end) as units_red,
    count(case when r.level = '橙' then 1 end) as units_orange,
    count(case when r.level = '黄' then 1 end) as units_yellow,
    count(case when r.level = '蓝' then 1 end) as units_blue,
    count(case when r.level = '{{ insufficient }}' then 1 end) as units_insufficient,
    max(case when r.rk = 1 then r.level end) as worst_level,
    max(case when r.rk = 1 then r.unit end) as worst_unit,
    max(case when r.rk = 1 then r.score end) as worst_score,
    max(case when r.rk = 1 then r.drivers_zh end) as worst_drivers_zh,
    max(f.last_hour) as feeds_last_hour,
    cast((unix_timestamp(max(c.newest_hour)) - unix_timestamp(max(f.last_hour))) / 3600 as int) as feeds_lag_hours
from ranked as r
left join feeds as f on r.centre = f.centre
cross join clock as c
group by r.centre, r.score_date
