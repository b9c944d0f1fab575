{#- Flows per day and centre: admissions (入所), transfers between zones (转区) and releases (解除). -#}
with stays as (
    select * from {{ ref('int_zone_stays') }}
),

admissions as (
    select * from {{ ref('stg_silver__admission') }}
),

events as (
    select
        admitted_on as movement_date,
        centre,
        1 as is_admission,
        0 as is_transfer,
        0 as is_release
    from admissions
    where admitted_on is not null
    union all
    select
        entered_on as movement_date,
        centre,
        0 as is_admission,
        1 as is_transfer,
        0 as is_release
    from stays
    where not is_first_stay and entered_on is not null
    union all
    select
        released_on as movement_date,
        centre,
        0 as is_admission,
        0 as is_transfer,
        1 as is_release
    from admissions
    where released_on is not null
),

days as (
    select explode(sequence(min(movement_date), max(movement_date))) as movement_date
    from events
),

centres as (
    select distinct centre from events
),

counts as (
    select
        movement_date,
        centre,
        sum(is_admission) as admissions,
        sum(is_transfer) as transfers,
        sum(is_release) as releases
    from events
    group by movement_date, centre
),

final as (
    select
        d.movement_date,
        c.centre,
        cast(coalesce(n.admissions, 0) as bigint) as admissions,
        cast(coalesce(n.transfers, 0) as bigint) as transfers,
        cast(coalesce(n.releases, 0) as bigint) as releases
    from days as d
    cross join centres as c
    left join counts as n
        on
            d.movement_date = n.movement_date
            and c.centre = n.centre
)

select * from final
