with source as (
    select * from {{ source('silver', 'assessment') }}
),

final as (
    select
        assessment_id,
        admission_id,
        person_pk,
        centre,
        assessment_type,
        assessment_type_label,
        assessment_date,
        zone,
        detox_result,
        recovery_result,
        behaviour_result,
        social_result,
        detox_score,
        recovery_score,
        behaviour_score,
        social_score,
        composite_score,
        outcome,
        outcome_label,
        rule_version
    from source
    where is_current
)

select * from final
