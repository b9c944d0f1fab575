with source as (
    select * from {{ source('silver', 'training_session') }}
),

final as (
    select
        training_session_id,
        admission_id,
        person_pk,
        training_date,
        exercise_type,
        duration_min,
        avg_hr,
        max_hr,
        intensity_met,
        energy_kcal,
        attendance_status
    from source
    where is_current
)

select * from final
