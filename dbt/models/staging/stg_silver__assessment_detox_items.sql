with source as (
    select * from {{ source('silver', 'assessment_detox_items') }}
),

final as (
    select
        detail_id,
        assessment_id,
        admission_id,
        person_pk,
        drug_test_date,
        drug_test_result,
        item1_test_negative,
        item2_medication_stopped,
        item3_acute_resolved,
        item4_no_protracted,
        item5_no_psychiatric,
        total_score,
        result,
        source_updated_at
    from source
    where is_current
)

select * from final
