-- One row per admission: what was known at admission, and (for released admissions) whether the
-- person was admitted again within 365 days of release (the relapse label).
with admissions as (
    select
        admission_id,
        person_pk,
        centre,
        admitted_on,
        released_on,
        release_type
    from silver.admission
    where is_current
),

persons as (
    select
        person_pk,
        sex,
        birth_date,
        education,
        main_drug
    from silver.person
    where is_current
),

history as (
    select
        a.admission_id,
        count(p.admission_id) as prior_admissions
    from admissions as a
    left join admissions as p
        on a.person_pk = p.person_pk and a.admitted_on > p.admitted_on
    group by a.admission_id
),

relapse as (
    select
        a.admission_id,
        max(case
            when
                n.admitted_on > a.released_on
                and n.admitted_on <= date_add(a.released_on, 365) then 1
            else 0
        end) as relapsed_365d
    from admissions as a
    left join admissions as n
        on a.person_pk = n.person_pk and a.admission_id <> n.admission_id
    where a.released_on is not null
    group by a.admission_id
)

select
    a.admission_id,
    a.person_pk,
    a.centre,
    a.admitted_on,
    a.released_on,
    coalesce(cast(datediff(a.admitted_on, p.birth_date) / 365.25 as double), 35.0) as age_at_admission,
    cast(h.prior_admissions as double) as prior_admissions,
    coalesce(p.sex, '9') as sex,
    coalesce(p.education, '90') as education,
    coalesce(p.main_drug, '999') as main_drug,
    r.relapsed_365d,
    a.released_on is null as in_centre
from admissions as a
left join persons as p on a.person_pk = p.person_pk
left join history as h on a.admission_id = h.admission_id
left join relapse as r on a.admission_id = r.admission_id
