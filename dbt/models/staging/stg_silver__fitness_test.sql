with source as (
    select * from {{ source('silver', 'fitness_test') }}
),

final as (
    select
        fitness_test_id,
        admission_id,
        person_pk,
        test_date,
        test_stage,
        height_cm,
        weight_kg,
        bmi,
        vital_capacity_ml,
        grip_kg,
        sit_and_reach_cm,
        one_leg_stand_s,
        reaction_time_s,
        vertical_jump_cm,
        push_ups,
        sit_ups,
        step_test_index,
        resting_hr,
        systolic_bp,
        diastolic_bp,
        body_fat_pct,
        waist_cm,
        composite_score,
        fitness_grade,
        exercise_group,
        meets_norm
    from source
    where is_current
)

select * from final
