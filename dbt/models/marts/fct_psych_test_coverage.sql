{#- 心理矫治: per admission, a valid SCL-90 test within N days of admission (心理测评覆盖). -#}
{%- set window_days = var('psych_test_window_days', 30) -%}
with admissions as (
    select * from {{ ref('stg_silver__admission') }}
),

tests as (
    select * from {{ ref('stg_silver__scl90_result') }}
    where test_date is not null and coalesce(is_valid, '1') = '1'
),

bounds as (
    select {{ smartrehab_as_of_date('max(admitted_on)') }} as as_of_date
    from admissions
),

first_test as (
    select
        a.admission_id,
        min(t.test_date) as first_tested_on
    from admissions as a
    inner join tests as t
        on
            a.admission_id = t.admission_id
            and a.admitted_on <= t.test_date
            and t.test_date <= date_add(a.admitted_on, {{ window_days }})
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
        date_add(a.admitted_on, {{ window_days }}) <= b.as_of_date as is_window_closed,
        f.first_tested_on,
        f.first_tested_on is not null as is_tested_in_window
    from admissions as a
    cross join bounds as b
    left join first_test as f on a.admission_id = f.admission_id
    where a.admitted_on is not null and a.admitted_on <= b.as_of_date
)

select * from final
