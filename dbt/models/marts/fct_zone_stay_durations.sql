{#- Days spent in each zone stay against the expected period of the zone, with overdue flags (超期未转区). -#}
with stays as (
    select * from {{ ref('int_zone_stays') }}
),

stage_passes as (
    -- Stage assessments (阶段评估, types 02-05) that cleared the person for the next zone: outcome 05
    -- 转入下一期区, or a 生理脱毒 stage evaluation whose items pass.
    select
        admission_id,
        assessment_date
    from {{ ref('fct_assessment_areas') }}
    where
        assessment_type in ('02', '03', '04', '05')
        and assessment_date is not null
        and (coalesce(outcome = '05', false) or (assessment_type = '02' and coalesce(detox_is_pass, false)))
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

stage_checked as (
    select
        m.zone_placement_id,
        count(p.admission_id) > 0 as has_passed_stage_assessment
    from measured as m
    left join stage_passes as p
        on
            m.admission_id = p.admission_id
            and m.entered_on <= p.assessment_date
            and m.stay_end_on >= p.assessment_date
    group by m.zone_placement_id
),

with_stage as (
    select
        m.*,
        c.has_passed_stage_assessment
    from measured as m
    inner join stage_checked as c on m.zone_placement_id = c.zone_placement_id
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
        has_passed_stage_assessment,
        coalesce(datediff(stay_end_on, entered_on) > expected_days, false) as exceeded_expected,
        coalesce(
            datediff(stay_end_on, entered_on) > expected_days and next_entered_on is null and not is_released
            and not has_passed_stage_assessment,
            false
        ) as is_overdue,
        coalesce(
            datediff(stay_end_on, entered_on) > expected_days and next_entered_on is null and not is_released
            and has_passed_stage_assessment,
            false
        ) as is_awaiting_transfer,
        case
            when datediff(stay_end_on, entered_on) > expected_days
                then datediff(stay_end_on, entered_on) - expected_days
            else 0
        end as days_over_expected,
        as_of_date
    from with_stage
)

select * from final
