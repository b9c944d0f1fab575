{#- Per admission: days present per silver (admission to release) against census days from zone stays. -#}
with admissions as (
    select * from {{ ref('stg_silver__admission') }}
),

zone_days as (
    select * from {{ ref('int_zone_days_expanded') }}
),

bounds as (
    select max(census_date) as as_of_date from zone_days
),

census as (
    select
        z.admission_id,
        sum(cast(z.centre = a.centre as int)) as census_days,
        sum(cast(z.centre != a.centre as int)) as census_days_other_centre
    from zone_days as z
    inner join admissions as a on z.admission_id = a.admission_id
    group by z.admission_id
),

final as (
    select
        a.admission_id,
        a.person_pk,
        a.centre,
        a.admitted_on,
        a.released_on,
        greatest(
            datediff(least(coalesce(a.released_on, date_add(b.as_of_date, 1)), date_add(b.as_of_date, 1)), a.admitted_on),
            0
        ) as present_days,
        coalesce(c.census_days, 0) as census_days,
        coalesce(c.census_days_other_centre, 0) as census_days_other_centre
    from admissions as a
    cross join bounds as b
    left join census as c on a.admission_id = c.admission_id
    where a.admitted_on is not null
)

select
    *,
    present_days = census_days and census_days_other_centre = 0 as is_consistent
from final
