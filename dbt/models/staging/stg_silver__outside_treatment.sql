with source as (
    select * from {{ source('silver', 'outside_treatment') }}
),

final as (
    select
        outside_treatment_id,
        admission_id,
        person_pk,
        leave_id,
        hospital_grade,
        visit_type,
        admitted_on,
        discharged_on,
        diagnosis_icd10,
        total_cost_cny,
        insurance_paid_cny,
        guard_count,
        outcome
    from source
    where is_current
)

select * from final
