{#- Days spent in each zone stay against the expected period of the zone, with overdue flags (超期未转区). -#}
with stays as (
    select * from {{ ref('int_zone_stays') }}
),

measured as (
    select
        zone_placement_id,
        admission_id,
        person_pk,
        centre,
        zone,
        entered_on,
        left_on,
        next_zone,
        next_entered_on,
        released_on,
        as_of_date,
        case zone
            when '01' then {{ var('detox_period_days', 30) }}
            when '02' then {{ var('adaptation_period_days', 60) }}
        end as expected_days,
        coalesce(released_on <= as_of_date, false) as is_released,
        least(coalesce(left_on, next_entered_on, released_on, as_of_date), as_of_date) as stay_end_on
    from stays
    where entered_on <= as_of_date
),

final as (
    select
        zone_placement_id,
        admission_id,
        person_pk,
        centre,
        zone,
        case zone
            when '01' then '生理脱毒区'
            when '02' then '教育适应区'
            when '03' then '康复巩固区'
            when '04' then '回归指导区'
        end as zone_label,
        entered_on,
        left_on,
        stay_end_on,
        datediff(stay_end_on, entered_on) as stay_days,
        expected_days,
        next_zone,
        next_entered_on is not null as has_later_transfer,
        is_released,
        coalesce(datediff(stay_end_on, entered_on) > expected_days, false) as exceeded_expected,
        coalesce(
            datediff(stay_end_on, entered_on) > expected_days and next_entered_on is null and not is_released,
            false
        ) as is_overdue,
        case
            when datediff(stay_end_on, entered_on) > expected_days
                then datediff(stay_end_on, entered_on) - expected_days
            else 0
        end as days_over_expected,
        as_of_date
    from measured
)

select * from final
