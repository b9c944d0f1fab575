with source as (
    select * from {{ source('silver', 'post_release_followup') }}
),

final as (
    select
        followup_id,
        admission_id,
        person_pk,
        milestone,
        followup_date,
        days_since_release,
        mode,
        result,
        result_label,
        drug_test_result,
        employment_status,
        housing_status,
        family_relations,
        in_community_rehab,
        info_source
    from source
    where is_current
)

select * from final
