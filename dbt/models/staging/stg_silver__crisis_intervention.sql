with source as (
    select * from {{ source('silver', 'crisis_intervention') }}
),

final as (
    select
        crisis_id,
        admission_id,
        person_pk,
        detected_at,
        detection_route,
        crisis_type,
        crisis_level,
        crisis_level_label,
        restraint_used,
        restraint_id,
        sent_to_hospital,
        closed_at,
        outcome,
        follow_up_days,
        reported_at
    from source
    where is_current
)

select * from final
