with source as (
    select * from {{ source('silver', 'assessment_recovery_items') }}
),

final as (
    select
        detail_id,
        assessment_id,
        admission_id,
        person_pk,
        vital_weight_ok,
        vital_respiration_ok,
        vital_heart_rate_ok,
        vital_blood_pressure_ok,
        vital_liver_ok,
        item1_body_function,
        fitness_mode,
        expander_reps,
        item2_fitness,
        pf16_sten,
        item3_psych,
        relapse_risk_level,
        item4_relapse,
        theory_exam_score,
        item5_theory,
        total_score,
        result,
        source_updated_at
    from source
    where is_current
)

select * from final
