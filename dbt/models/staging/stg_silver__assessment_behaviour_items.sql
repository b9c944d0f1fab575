with source as (
    select * from {{ source('silver', 'assessment_behaviour_items') }}
),

final as (
    select
        detail_id,
        assessment_id,
        admission_id,
        person_pk,
        period_start,
        period_end,
        avg_monthly_score,
        cum_bonus,
        cum_deductions,
        serious_violations,
        outstanding_count,
        sanction_count,
        drug_use_inside,
        escape_attempt,
        raw_points,
        converted_score,
        result,
        source_updated_at
    from source
    where is_current
)

select * from final
