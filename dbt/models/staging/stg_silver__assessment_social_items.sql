with source as (
    select * from {{ source('silver', 'assessment_social_items') }}
),

final as (
    select
        detail_id,
        assessment_id,
        admission_id,
        person_pk,
        family_support,
        family_drug_users,
        housing_status,
        stable_income,
        planned_employment,
        certificates_held,
        visits_in_period,
        calls_in_period,
        aftercare_agreement,
        community_opinion,
        investigation_method,
        family_score,
        social_support_score,
        adaptability_score,
        total_score,
        result,
        source_updated_at
    from source
    where is_current
)

select * from final
