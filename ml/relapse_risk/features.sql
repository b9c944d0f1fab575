-- Relapse-risk features: one row per scoring occasion (an admission seen as of one day).
--
-- Input: the temporary view `relapse_occasions` (admission_id, as_of_date, occasion), made by
-- features.py. Every feature reads only records whose event day is on or before as_of_date and
-- whose version was recorded by then (`valid_from`): the latest such version of each record, so a
-- correction made after the day is not seen either. Person, admission and zone rows are read in their
-- current version but only for facts fixed before the day (birth, sex, admission day, zone days cut at
-- the day). `{{ silver }}` and `{{ gold_staging }}` are the schemas (features.py fills them in).
-- The column list is ml/relapse_risk/contract.py's COLUMNS.
-- The latest version of each record of `table` recorded by the occasion's day (valid_from) among
-- those that `condition` keeps (the event on or before the day): one row per occasion and record.
-- noqa: disable=LT02
{% macro latest_versions(table, record_id, columns, condition="true", on="o.admission_id = t.admission_id") %}
    select *
    from (
        select
            o.admission_id,
            o.as_of_date,
            {%- for c in columns %}
            {{ c }},
            {%- endfor %}
            row_number() over (
                partition by o.admission_id, o.as_of_date, t.{{ record_id }} order by t.valid_from desc
            ) as version_rank
        from occasions as o
        inner join {{ silver }}.{{ table }} as t
            on {{ on }} and {{ condition }} and cast(t.valid_from as date) <= o.as_of_date
    ) as versions
    where version_rank = 1
{% endmacro %}
-- noqa: enable=LT02

with occasions as (
    select
        o.admission_id,
        o.as_of_date,
        o.occasion,
        a.person_pk,
        a.centre,
        a.admitted_on,
        a.released_on
    from relapse_occasions as o
    inner join {{ silver }}.admission as a on o.admission_id = a.admission_id and a.is_current
    where a.admitted_on <= o.as_of_date
),

persons as (
    select
        person_pk,
        sex,
        ethnicity,
        birth_date,
        education,
        main_drug
    from {{ silver }}.person
    where is_current
),

-- Event tables as of each occasion: latest version recorded by the day, event on or before it.
drug_history as (
    {{ latest_versions("drug_use_history", "drug_history_id", [
        "t.age_at_first_use", "t.years_of_use", "t.use_method", "t.shared_needles", "t.use_frequency",
        "t.compulsory_episodes", "t.prior_community_rehab", "t.is_main_drug"]) }}
),

main_drug_history as (
    select
        admission_id,
        as_of_date,
        max(age_at_first_use) as age_at_first_use,
        max(years_of_use) as years_of_use,
        max(cast(use_method in ('05', '06') or shared_needles = '1' as int)) as injects,
        max(cast(use_frequency in ('1', '2') as int)) as daily,
        max(compulsory_episodes) as compulsory_episodes,
        max(prior_community_rehab) as prior_community_rehab
    from drug_history
    where is_main_drug = '1'
    group by admission_id, as_of_date
),

earlier_admissions as (
    select
        o.admission_id,
        o.as_of_date,
        count(e.admission_id) as n
    from occasions as o
    inner join {{ silver }}.admission as e
        on o.person_pk = e.person_pk and e.is_current and o.admitted_on > e.admitted_on
    group by o.admission_id, o.as_of_date
),

zone_days as (
    select
        o.admission_id,
        o.as_of_date,
        sum(case when z.zone = '01' then datediff(least(coalesce(z.left_on, o.as_of_date), o.as_of_date), z.entered_on) end)
            as days_zone_01,
        sum(case when z.zone = '02' then datediff(least(coalesce(z.left_on, o.as_of_date), o.as_of_date), z.entered_on) end)
            as days_zone_02,
        sum(case when z.zone = '03' then datediff(least(coalesce(z.left_on, o.as_of_date), o.as_of_date), z.entered_on) end)
            as days_zone_03,
        sum(case when z.zone = '04' then datediff(least(coalesce(z.left_on, o.as_of_date), o.as_of_date), z.entered_on) end)
            as days_zone_04
    from occasions as o
    inner join {{ silver }}.zone_placement as z
        on o.admission_id = z.admission_id and z.is_current and o.as_of_date >= z.entered_on
    group by o.admission_id, o.as_of_date
),

assessments as (
    {{ latest_versions("assessment", "assessment_id", [
        "t.assessment_id", "t.assessment_date", "t.detox_result", "t.recovery_result", "t.behaviour_result",
        "t.social_result", "t.recovery_score", "t.behaviour_score", "t.social_score"],
        "t.assessment_type in ('06', '07', '08') and o.as_of_date >= t.assessment_date") }}
),

last_assessment as (
    select *
    from (
        select
            *,
            row_number() over (
                partition by admission_id, as_of_date order by assessment_date desc, assessment_id desc
            ) as rn
        from assessments
    ) as ranked
    where rn = 1
),

scl90 as (
    select
        admission_id,
        as_of_date,
        max_by(overall_mean, test_date) as gsi_last,
        max_by(overall_mean, test_date) - min_by(overall_mean, test_date) as gsi_change
    from (
        {{ latest_versions("scl90_result", "test_id", [
            "t.test_date", "t.is_valid", "cast(t.overall_mean as double) as overall_mean"],
            "o.as_of_date >= t.test_date") }}
    ) as tests
    where is_valid = '1'
    group by admission_id, as_of_date
),

pf16 as (
    select
        admission_id,
        as_of_date,
        max_by(factor_c, test_date) as stability,
        max_by(mental_health_index, test_date) as mental_health
    from (
        {{ latest_versions("pf16_result", "test_id", [
            "t.test_date", "t.is_valid", "cast(t.factor_c as double) as factor_c",
            "cast(t.mental_health_index as double) as mental_health_index"],
            "o.as_of_date >= t.test_date") }}
    ) as tests
    where is_valid = '1'
    group by admission_id, as_of_date
),

relapse_scale as (
    select
        admission_id,
        as_of_date,
        max_by(total_score, test_date) as total,
        max_by(craving_vas, test_date) as craving,
        max_by(social_support, test_date) as social_support
    from (
        {{ latest_versions("relapse_risk_result", "test_id", [
            "t.test_date", "t.is_valid", "cast(t.total_score as double) as total_score",
            "cast(t.craving_vas as double) as craving_vas", "cast(t.social_support as double) as social_support"],
            "o.as_of_date >= t.test_date") }}
    ) as tests
    where is_valid = '1'
    group by admission_id, as_of_date
),

score_events as (
    select
        admission_id,
        as_of_date,
        sum(cast(event_type in ('1', '3', '5') and event_date > date_sub(as_of_date, 90) as int)) as deductions_90d,
        sum(cast(event_type in ('2', '4') and event_date > date_sub(as_of_date, 90) as int)) as bonuses_90d,
        sum(cast(event_type = '5' as int)) as serious_violations
    from (
        {{ latest_versions("behaviour_score_event", "score_event_id", ["t.event_date", "t.event_type", "t.is_valid"],
                           "o.as_of_date >= t.event_date") }}
    ) as events
    where is_valid = '1'
    group by admission_id, as_of_date
),

monthly_scores as (
    -- A month's total is known once the month is over.
    select
        admission_id,
        as_of_date,
        avg(monthly_total) as avg_6m
    from (
        {{ latest_versions("behaviour_score_monthly", "monthly_score_id",
                           ["cast(t.monthly_total as double) as monthly_total"],
                           "last_day(try_to_date(t.assessment_month, 'yyyyMM')) < o.as_of_date"
                           ~ " and try_to_date(t.assessment_month, 'yyyyMM') >= add_months(o.as_of_date, -6)") }}
    ) as months
    group by admission_id, as_of_date
),

visits as (
    select
        o.admission_id,
        o.as_of_date,
        count(distinct v.visit_id) as n
    from occasions as o
    inner join {{ silver }}.visit as v
        on
            o.admission_id = v.admission_id
            and o.as_of_date >= v.visit_date
            and cast(v.valid_from as date) <= o.as_of_date
    group by o.admission_id, o.as_of_date
),

calls as (
    select
        o.admission_id,
        o.as_of_date,
        count(distinct c.call_id) as n
    from occasions as o
    inner join {{ silver }}.family_call as c
        on
            o.admission_id = c.admission_id
            and cast(c.started_at as date) <= o.as_of_date
            and cast(c.valid_from as date) <= o.as_of_date
    group by o.admission_id, o.as_of_date
),

family as (
    select
        admission_id,
        as_of_date,
        max(cast(has_drug_history = '1' as int)) as drug_history
    from (
        {{ latest_versions("family_member", "family_member_id", ["t.has_drug_history"],
                           on="o.person_pk = t.person_pk") }}
    ) as members
    group by admission_id, as_of_date
),

training as (
    select
        admission_id,
        as_of_date,
        count(*) as sessions,
        avg(cast(attendance_status = '1' as double)) as attendance_rate
    from (
        {{ latest_versions("training_session", "training_session_id", ["t.attendance_status"],
                           "o.as_of_date >= t.training_date") }}
    ) as sessions
    group by admission_id, as_of_date
),

education as (
    -- Monthly summaries, known once the month is over.
    select
        admission_id,
        as_of_date,
        avg(hours_total) as hours_per_month
    from (
        {{ latest_versions("education_hours_monthly", "hours_summary_id", ["cast(t.hours_total as double) as hours_total"],
                           "last_day(try_to_date(t.month, 'yyyyMM')) < o.as_of_date") }}
    ) as months
    group by admission_id, as_of_date
),

outcomes as (
    -- The label, as the 操守保持率 indicator counts it (dbt int_release_outcomes, 1-year horizon).
    select
        admission_id,
        case when is_relapsed then 1 when is_abstinent then 0 end as relapsed_12m
    from {{ gold_staging }}.int_release_outcomes
    where horizon_years = 1 and is_due
),

readmissions as (
    -- A new admission within 365 days of release is a relapse whatever the follow-ups say.
    select
        a.admission_id,
        1 as readmitted_12m
    from {{ silver }}.admission as a
    inner join {{ silver }}.admission as n
        on
            a.person_pk = n.person_pk
            and n.is_current
            and a.released_on < n.admitted_on
            and n.admitted_on <= date_add(a.released_on, 365)
    where a.is_current and a.released_on is not null
    group by a.admission_id
),

final as (
    select
        o.person_pk,
        o.admission_id,
        o.centre,
        o.as_of_date,
        o.occasion,
        -- The admission's outcome (training and evaluation only, never a feature): null in custody.
        o.released_on,
        year(o.released_on) as release_cohort,
        case
            when o.released_on is null then null
            when r.readmitted_12m = 1 then 1
            else y.relapsed_12m
        end as relapsed_12m,
        coalesce(p.sex, '9') as sex,
        case when p.ethnicity = '01' then '汉族' when p.ethnicity is null then '未知' else '少数民族' end
            as ethnic_group,
        case
            when p.birth_date is null then '未知'
            when datediff(o.admitted_on, p.birth_date) / 365.25 < 30 then '<30'
            when datediff(o.admitted_on, p.birth_date) / 365.25 < 40 then '30-39'
            when datediff(o.admitted_on, p.birth_date) / 365.25 < 50 then '40-49'
            else '50+'
        end as age_band,
        cast(datediff(o.admitted_on, p.birth_date) / 365.25 as double) as age_at_admission,
        case
            when p.education is null then '未知'
            when p.education < '40' then '大专及以上'
            when p.education < '70' then '高中/中专'
            when p.education < '80' then '初中'
            when p.education < '90' then '小学及以下'
            else '其他'
        end as education,
        case substr(p.main_drug, 1, 1)
            when '1' then '阿片类'
            when '2' then '合成毒品(苯丙胺类/氯胺酮)'
            when '3' then '大麻'
            when '4' then '可卡因'
            when '5' then '阿片类'
            when '6' then '新精神活性物质'
            when '9' then '其他'
            else '未知'
        end as main_drug_class,
        cast(d.age_at_first_use as double) as age_at_first_use,
        cast(d.years_of_use as double) as years_of_use,
        case when d.injects = 1 then '是' when d.injects = 0 then '否' else '未知' end as injection_use,
        case when d.daily = 1 then '是' when d.daily = 0 then '否' else '未知' end as daily_use,
        cast(greatest(coalesce(d.compulsory_episodes - 1, 0), coalesce(e.n, 0)) as double) as prior_admissions,
        cast(d.prior_community_rehab as double) as prior_community_rehab,
        cast(datediff(o.as_of_date, o.admitted_on) as double) as days_in_custody,
        cast(coalesce(z.days_zone_01, 0) as double) as days_zone_01,
        cast(coalesce(z.days_zone_02, 0) as double) as days_zone_02,
        cast(coalesce(z.days_zone_03, 0) as double) as days_zone_03,
        cast(coalesce(z.days_zone_04, 0) as double) as days_zone_04,
        case
            when la.admission_id is null then '未评估'
            when la.detox_result = '1' and la.recovery_result = '1' and la.behaviour_result = '1' then '三项合格'
            else '未全部合格'
        end as last_assessment_result,
        case
            when la.admission_id is null then '未评估'
            when la.social_result = '1' then '良好'
            else '较差'
        end as last_social_result,
        cast(
            cast(la.detox_result = '2' as int) + cast(la.recovery_result = '2' as int)
            + cast(la.behaviour_result = '2' as int) + cast(la.social_result = '2' as int) as double
        ) as assessment_failed_areas,
        cast(la.recovery_score as double) as recovery_score,
        cast(la.behaviour_score as double) as behaviour_score,
        cast(la.social_score as double) as social_score,
        s.gsi_last as scl90_gsi_last,
        s.gsi_change as scl90_gsi_change,
        f.stability as pf16_stability,
        f.mental_health as pf16_mental_health,
        rs.total as relapse_scale_total,
        rs.craving as craving_vas,
        rs.social_support as relapse_scale_social_support,
        cast(coalesce(se.deductions_90d, 0) as double) as deductions_90d,
        cast(coalesce(se.bonuses_90d, 0) as double) as bonuses_90d,
        cast(coalesce(se.serious_violations, 0) as double) as serious_violations,
        ms.avg_6m as monthly_score_avg_6m,
        cast(coalesce(v.n, 0) as double) * 30.4 / greatest(datediff(o.as_of_date, o.admitted_on), 30)
            as visits_per_month,
        cast(coalesce(c.n, 0) as double) * 30.4 / greatest(datediff(o.as_of_date, o.admitted_on), 30)
            as calls_per_month,
        case when fm.drug_history = 1 then '是' when fm.drug_history = 0 then '否' else '未知' end
            as family_drug_history,
        t.attendance_rate as training_attendance_rate,
        cast(coalesce(t.sessions, 0) as double) * 30.4 / greatest(datediff(o.as_of_date, o.admitted_on), 30)
            as training_per_month,
        ed.hours_per_month as education_hours_per_month
    from occasions as o
    left join persons as p on o.person_pk = p.person_pk
    left join main_drug_history as d on o.admission_id = d.admission_id and o.as_of_date = d.as_of_date
    left join earlier_admissions as e on o.admission_id = e.admission_id and o.as_of_date = e.as_of_date
    left join zone_days as z on o.admission_id = z.admission_id and o.as_of_date = z.as_of_date
    left join last_assessment as la on o.admission_id = la.admission_id and o.as_of_date = la.as_of_date
    left join scl90 as s on o.admission_id = s.admission_id and o.as_of_date = s.as_of_date
    left join pf16 as f on o.admission_id = f.admission_id and o.as_of_date = f.as_of_date
    left join relapse_scale as rs on o.admission_id = rs.admission_id and o.as_of_date = rs.as_of_date
    left join score_events as se on o.admission_id = se.admission_id and o.as_of_date = se.as_of_date
    left join monthly_scores as ms on o.admission_id = ms.admission_id and o.as_of_date = ms.as_of_date
    left join visits as v on o.admission_id = v.admission_id and o.as_of_date = v.as_of_date
    left join calls as c on o.admission_id = c.admission_id and o.as_of_date = c.as_of_date
    left join family as fm on o.admission_id = fm.admission_id and o.as_of_date = fm.as_of_date
    left join training as t on o.admission_id = t.admission_id and o.as_of_date = t.as_of_date
    left join education as ed on o.admission_id = ed.admission_id and o.as_of_date = ed.as_of_date
    left join outcomes as y on o.admission_id = y.admission_id
    left join readmissions as r on o.admission_id = r.admission_id
)

select * from final
