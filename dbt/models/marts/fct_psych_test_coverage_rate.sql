{#- 心理测评覆盖率 by centre and admission month, over admissions whose window has closed. -#}
with coverage as (
    select * from {{ ref('fct_psych_test_coverage') }}
    where is_window_closed
),

final as (
    select
        centre,
        admission_month,
        count(*) as admissions,
        sum(cast(is_tested_in_window as int)) as tested_in_window,
        {{ safe_rate('sum(cast(is_tested_in_window as int))', 'count(*)') }} as psych_test_coverage_rate
    from coverage
    group by centre, admission_month
)

select * from final
