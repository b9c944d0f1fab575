{#- Per admission: HIV / HCV / syphilis / TB screened within N days of admission (传染病筛查覆盖). -#}
{%- set window_days = var('screening_window_days', 30) -%}
with admissions as (
    select * from {{ ref('stg_silver__admission') }}
),

screenings as (
    select * from {{ ref('stg_silver__infectious_screening') }}
),

bounds as (
    select
        {{ smartrehab_as_of_date('max(admitted_on)') }} as as_of_date
    from admissions
),

tests_done as (
    select
        admission_id,
        screening_date,
        {{ is_tested('hiv_screen') }} as hiv_tested,
        {{ is_tested('hcv_antibody') }} as hcv_tested,
        {{ is_tested('syphilis_trust') }} or {{ is_tested('syphilis_tppa') }} as syphilis_tested,
        {{ is_tested('tb_result') }} as tb_tested
    from screenings
    where screening_date is not null
),

in_window as (
    select
        a.admission_id,
        min(case when t.hiv_tested then t.screening_date end) as hiv_screened_on,
        min(case when t.hcv_tested then t.screening_date end) as hcv_screened_on,
        min(case when t.syphilis_tested then t.screening_date end) as syphilis_screened_on,
        min(case when t.tb_tested then t.screening_date end) as tb_screened_on
    from admissions as a
    inner join tests_done as t
        on
            a.admission_id = t.admission_id
            and a.admitted_on <= t.screening_date
            and date_add(a.admitted_on, {{ window_days }}) >= t.screening_date
    group by a.admission_id
),

final as (
    select
        a.admission_id,
        a.person_pk,
        a.centre,
        a.admitted_on,
        cast(date_trunc('month', a.admitted_on) as date) as admission_month,
        {{ window_days }} as window_days,
        date_add(a.admitted_on, {{ window_days }}) as window_end_on,
        date_add(a.admitted_on, {{ window_days }}) <= b.as_of_date as is_window_closed,
        w.hiv_screened_on,
        w.hiv_screened_on is not null as is_hiv_screened,
        w.hcv_screened_on,
        w.hcv_screened_on is not null as is_hcv_screened,
        w.syphilis_screened_on,
        w.syphilis_screened_on is not null as is_syphilis_screened,
        w.tb_screened_on,
        w.tb_screened_on is not null as is_tb_screened,
        w.hiv_screened_on is not null
        and w.hcv_screened_on is not null
        and w.syphilis_screened_on is not null
        and w.tb_screened_on is not null as is_fully_screened,
        b.as_of_date
    from admissions as a
    cross join bounds as b
    left join in_window as w
        on a.admission_id = w.admission_id
    where a.admitted_on is not null and a.admitted_on <= b.as_of_date
)

select * from final
