{#- 心理矫治: SCL-90 factor means by centre and month of stay (months since admission), valid tests only. -#}
with tests as (
    select * from {{ ref('stg_silver__scl90_result') }}
    where test_date is not null and coalesce(is_valid, '1') = '1'
),

admissions as (
    select * from {{ ref('stg_silver__admission') }}
),

placed as (
    select
        a.centre,
        cast(floor(months_between(t.test_date, a.admitted_on)) as int) as months_since_admission,
        t.*
    from tests as t
    inner join admissions as a on t.admission_id = a.admission_id
    where t.test_date >= a.admitted_on
),

final as (
    select
        centre,
        months_since_admission,
        count(*) as tests,
        avg(somatization) as somatization,
        avg(obsessive_compulsive) as obsessive_compulsive,
        avg(interpersonal_sensitivity) as interpersonal_sensitivity,
        avg(depression) as depression,
        avg(anxiety) as anxiety,
        avg(hostility) as hostility,
        avg(phobic_anxiety) as phobic_anxiety,
        avg(paranoid_ideation) as paranoid_ideation,
        avg(psychoticism) as psychoticism,
        avg(overall_mean) as overall_mean
    from placed
    group by centre, months_since_admission
)

select * from final
