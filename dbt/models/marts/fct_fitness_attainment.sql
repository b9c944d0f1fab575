{#- 康复训练: fitness-test attainment (康复训练达标率) by centre and month: people meeting the norm / people tested. -#}
with tests as (
    select * from {{ ref('stg_silver__fitness_test') }}
    where test_date is not null
),

admissions as (
    select * from {{ ref('stg_silver__admission') }}
),

latest as (
    -- A person tested twice in a month counts once, with the later test.
    select
        a.centre,
        cast(date_trunc('month', t.test_date) as date) as month,
        t.person_pk,
        t.meets_norm,
        row_number() over (
            partition by t.person_pk, date_trunc('month', t.test_date) order by t.test_date desc, t.fitness_test_id desc
        ) as rn
    from tests as t
    inner join admissions as a on t.admission_id = a.admission_id
),

final as (
    select
        centre,
        month,
        count(*) as people_tested,
        sum(cast(coalesce(meets_norm = '1', false) as int)) as people_meeting_norm,
        {{ safe_rate("sum(cast(coalesce(meets_norm = '1', false) as int))", 'count(*)') }} as fitness_attainment_rate
    from latest
    where rn = 1
    group by centre, month
)

select * from final
