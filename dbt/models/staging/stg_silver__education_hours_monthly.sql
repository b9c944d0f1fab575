with source as (
    select * from {{ source('silver', 'education_hours_monthly') }}
),

final as (
    select
        hours_summary_id,
        admission_id,
        person_pk,
        month,
        hours_admission_education,
        hours_legal,
        hours_moral,
        hours_anti_drug,
        hours_health,
        hours_mental_health,
        hours_general,
        hours_vocational,
        hours_reintegration,
        hours_total,
        target_met
    from source
    where is_current
)

select * from final
