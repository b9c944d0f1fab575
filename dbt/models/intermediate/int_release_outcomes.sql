{#- Per released admission and follow-up horizon (1, 2, 3 years): abstinent, relapsed or unknown. -#}
with admissions as (
    select * from {{ ref('stg_silver__admission') }}
),

followups as (
    select * from {{ ref('stg_silver__post_release_followup') }}
    where followup_date is not null
),

assessments as (
    select * from {{ ref('fct_assessment_areas') }}
),

bounds as (
    select {{ smartrehab_as_of_date('greatest(max(admitted_on), max(released_on))') }} as as_of_date
    from admissions
),

last_assessment as (
    -- The admission's last comprehensive assessment with all four areas scored: its three-area result.
    select
        admission_id,
        case when is_three_areas_pass then 'pass' else 'fail' end as assessment_result,
        row_number() over (partition by admission_id order by assessment_date desc, assessment_id desc) as rn
    from assessments
    where is_comprehensive and has_all_areas
),

horizons as (
    select explode(array(1, 2, 3)) as horizon_years
),

released as (
    select
        a.admission_id,
        a.person_pk,
        a.centre,
        a.released_on,
        year(a.released_on) as release_cohort,
        coalesce(l.assessment_result, 'none') as assessment_result,
        h.horizon_years,
        add_months(a.released_on, 12 * h.horizon_years) as horizon_end_on,
        add_months(a.released_on, 12 * h.horizon_years) <= b.as_of_date as is_due
    from admissions as a
    cross join horizons as h
    cross join bounds as b
    left join last_assessment as l on a.admission_id = l.admission_id and l.rn = 1
    where a.released_on is not null and a.released_on <= b.as_of_date and a.released_on >= a.admitted_on
),

evidence as (
    select
        r.admission_id,
        r.horizon_years,
        max(
            cast(
                f.result in ('2', '5')
                and (f.followup_date <= r.horizon_end_on or cast(f.milestone as int) <= 12 * r.horizon_years) as int
            )
        ) as relapsed,
        max(cast(f.result = '1' and f.milestone = lpad(cast(12 * r.horizon_years as string), 2, '0') as int))
            as abstinent_at_milestone
    from released as r
    inner join followups as f on r.admission_id = f.admission_id and r.released_on < f.followup_date
    group by r.admission_id, r.horizon_years
),

final as (
    select
        r.*,
        coalesce(e.relapsed = 1, false) as is_relapsed,
        coalesce(e.relapsed = 0 and e.abstinent_at_milestone = 1, false) as is_abstinent,
        case
            when e.relapsed = 1 then 'relapsed'
            when e.abstinent_at_milestone = 1 then 'abstinent'
            else 'unknown'
        end as status
    from released as r
    left join evidence as e on r.admission_id = e.admission_id and r.horizon_years = e.horizon_years
)

select * from final
