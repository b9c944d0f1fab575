with source as (
    select * from {{ source('silver', 'scl90_result') }}
),

final as (
    select
        test_id,
        admission_id,
        person_pk,
        test_date,
        test_stage,
        somatization,
        obsessive_compulsive,
        interpersonal_sensitivity,
        depression,
        anxiety,
        hostility,
        phobic_anxiety,
        paranoid_ideation,
        psychoticism,
        additional_items,
        total_score,
        overall_mean,
        positive_items,
        negative_items,
        positive_symptom_mean,
        result_level,
        duration_min,
        test_mode,
        is_valid
    from source
    where is_current
)

select * from final
