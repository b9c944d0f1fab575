-- person_events / data/events.csv: admissions (01), zone transfers (02), diagnostic assessments (03)
-- and releases (04) of the period, with the person's attributes. `source_record_id` and `person_pk`
-- are replaced by the receiver's exchange pseudonyms by the builder. The direct identifiers (name,
-- id_number) are read in clear text from silver.restricted_identity only when `with_name` /
-- `with_id_number` is true (the receiver is authorised for them); otherwise they are null here and
-- extract.py leaves the column out.
with admissions as (
    select
        admission_id,
        person_pk,
        centre,
        admitted_on,
        term_months,
        released_on,
        release_type
    from {{ gold_staging }}.stg_silver__admission
),

stays as (
    select
        zone_placement_id,
        admission_id,
        person_pk,
        centre,
        zone,
        entered_on,
        is_first_stay,
        lag(zone) over (partition by admission_id order by stay_seq) as from_zone,
        row_number() over (partition by admission_id order by stay_seq desc) as stay_from_last
    from {{ gold_staging }}.int_zone_stays
),

assessments as (
    select
        f.assessment_id,
        f.person_pk,
        f.centre,
        f.assessment_date,
        f.assessment_type,
        f.outcome,
        h.zone,
        h.detox_result,
        h.behaviour_result
    from {{ gold }}.fct_assessment_areas as f
    left join {{ gold_staging }}.stg_silver__assessment as h
        on f.assessment_id = h.assessment_id
),

events as (
    select
        a.admitted_on as event_date,
        '01' as event_type,
        a.admission_id as source_record_id,
        a.person_pk,
        a.centre,
        s.zone,
        cast(null as string) as from_zone,
        a.term_months,
        cast(null as string) as release_type,
        cast(null as string) as assessment_type,
        cast(null as string) as assessment_outcome,
        cast(null as string) as detox_result,
        cast(null as string) as behaviour_result
    from admissions as a
    left join stays as s
        on a.admission_id = s.admission_id and s.is_first_stay
    where a.admitted_on between date '{{ first }}' and date '{{ last }}'
    union all
    select
        entered_on as event_date,
        '02' as event_type,
        zone_placement_id as source_record_id,
        person_pk,
        centre,
        zone,
        from_zone,
        cast(null as int) as term_months,
        cast(null as string) as release_type,
        cast(null as string) as assessment_type,
        cast(null as string) as assessment_outcome,
        cast(null as string) as detox_result,
        cast(null as string) as behaviour_result
    from stays
    where not is_first_stay and entered_on between date '{{ first }}' and date '{{ last }}'
    union all
    select
        assessment_date as event_date,
        '03' as event_type,
        assessment_id as source_record_id,
        person_pk,
        centre,
        zone,
        cast(null as string) as from_zone,
        cast(null as int) as term_months,
        cast(null as string) as release_type,
        assessment_type,
        outcome as assessment_outcome,
        detox_result,
        behaviour_result
    from assessments
    where assessment_date between date '{{ first }}' and date '{{ last }}'
    union all
    select
        a.released_on as event_date,
        '04' as event_type,
        a.admission_id as source_record_id,
        a.person_pk,
        a.centre,
        s.zone,
        cast(null as string) as from_zone,
        cast(null as int) as term_months,
        a.release_type,
        cast(null as string) as assessment_type,
        cast(null as string) as assessment_outcome,
        cast(null as string) as detox_result,
        cast(null as string) as behaviour_result
    from admissions as a
    left join stays as s
        on a.admission_id = s.admission_id and s.stay_from_last = 1
    where a.released_on between date '{{ first }}' and date '{{ last }}'
),

persons as (
    select
        person_pk,
        sex,
        hukou_region,
        main_drug
    from {{ gold_staging }}.stg_silver__person
),

{% include "include/identities.sql" %}

final as (
    select
        e.*,
        p.sex,
        p.hukou_region,
        p.main_drug,
        d.name,
        d.id_number
    from events as e
    left join persons as p
        on e.person_pk = p.person_pk
    left join identities as d
        on e.person_pk = d.person_pk
)

select * from final
