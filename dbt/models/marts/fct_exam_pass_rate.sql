{#- 教育矫正: exam pass rate by centre and month (a resit that reaches the pass mark counts as passed). -#}
with exams as (
    select * from {{ ref('stg_silver__exam_result') }}
),

admissions as (
    select * from {{ ref('stg_silver__admission') }}
),

scored as (
    select
        a.centre,
        cast(date_trunc('month', e.exam_date) as date) as month,
        coalesce(
            e.score >= coalesce(e.pass_mark, {{ var('exam_default_pass_mark', 60) }})
            or e.resit_score >= coalesce(e.pass_mark, {{ var('exam_default_pass_mark', 60) }}),
            false
        ) as is_passed
    from exams as e
    inner join admissions as a on e.admission_id = a.admission_id
    where e.exam_date is not null and e.score is not null
),

final as (
    select
        centre,
        month,
        count(*) as exams,
        sum(cast(is_passed as int)) as exams_passed,
        {{ safe_rate('sum(cast(is_passed as int))', 'count(*)') }} as exam_pass_rate
    from scored
    group by centre, month
)

select * from final
