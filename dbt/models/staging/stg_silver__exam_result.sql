with source as (
    select * from {{ source('silver', 'exam_result') }}
),

final as (
    select
        exam_result_id,
        admission_id,
        person_pk,
        subject,
        exam_type,
        exam_mode,
        exam_date,
        score,
        pass_mark,
        passed,
        resit_score
    from source
    where is_current
)

select * from final
