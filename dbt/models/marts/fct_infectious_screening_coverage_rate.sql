{#- 传染病筛查覆盖率 by centre and admission month, over admissions whose screening window has closed. -#}
with coverage as (
    select * from {{ ref('fct_infectious_screening_coverage') }}
    where is_window_closed
),

final as (
    select
        centre,
        admission_month,
        count(*) as admissions,
        sum(cast(is_hiv_screened as int)) as hiv_screened,
        {{ safe_rate('sum(cast(is_hiv_screened as int))', 'count(*)') }} as hiv_coverage_rate,
        sum(cast(is_hcv_screened as int)) as hcv_screened,
        {{ safe_rate('sum(cast(is_hcv_screened as int))', 'count(*)') }} as hcv_coverage_rate,
        sum(cast(is_syphilis_screened as int)) as syphilis_screened,
        {{ safe_rate('sum(cast(is_syphilis_screened as int))', 'count(*)') }} as syphilis_coverage_rate,
        sum(cast(is_tb_screened as int)) as tb_screened,
        {{ safe_rate('sum(cast(is_tb_screened as int))', 'count(*)') }} as tb_coverage_rate,
        sum(cast(is_fully_screened as int)) as fully_screened,
        {{ safe_rate('sum(cast(is_fully_screened as int))', 'count(*)') }} as full_coverage_rate
    from coverage
    group by centre, admission_month
)

select * from final
