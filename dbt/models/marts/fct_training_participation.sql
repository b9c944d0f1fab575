{#- 康复训练: participation in scheduled training sessions by centre and month. -#}
with sessions as (
    select * from {{ ref('stg_silver__training_session') }}
    where training_date is not null
),

admissions as (
    select * from {{ ref('stg_silver__admission') }}
),

final as (
    select
        a.centre,
        cast(date_trunc('month', s.training_date) as date) as month,
        count(*) as scheduled_sessions,
        sum(cast(coalesce(s.attendance_status = '1', false) as int)) as attended_sessions,
        {{ safe_rate("sum(cast(coalesce(s.attendance_status = '1', false) as int))", 'count(*)') }}
            as training_participation_rate,
        count(distinct case when s.attendance_status = '1' then s.person_pk end) as people_trained,
        sum(case when s.attendance_status = '1' then s.duration_min else 0 end) as minutes_trained
    from sessions as s
    inner join admissions as a on s.admission_id = a.admission_id
    group by a.centre, cast(date_trunc('month', s.training_date) as date)
)

select * from final
