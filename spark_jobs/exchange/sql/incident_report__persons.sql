-- incident_report / data/persons.csv: the persons involved in the month's incidents (silver
-- incident_person, legacy AQ_SJRY), with the direct identifiers as in
-- person_events__events.sql (`with_name`, `with_id_number`).
with incidents as (
    select incident_id
    from {{ gold_staging }}.stg_silver__incident
    where to_date(occurred_at) between date '{{ first }}' and date '{{ last }}'
),

involved as (
    select
        incident_id,
        person_pk,
        role,
        injury,
        referred_for_prosecution
    from {{ silver }}.incident_person
    where is_current
),

identities as (
    select
        p.person_pk,
        case when {{ with_name }} then n.clear_value end as name,
        case when {{ with_id_number }} then i.clear_value end as id_number
    from {{ silver }}.person as p
    left join {{ silver }}.restricted_identity as n
        on {{ with_name }} and n.domain = 'name_pk' and p.name_pk = n.pseudonym
    left join {{ silver }}.restricted_identity as i
        on {{ with_id_number }} and i.domain = 'id_number_pk' and p.id_number_pk = i.pseudonym
    where p.is_current
),

final as (
    select
        v.incident_id,
        v.person_pk,
        v.role,
        v.injury,
        v.referred_for_prosecution,
        d.name,
        d.id_number
    from involved as v
    inner join incidents as c
        on v.incident_id = c.incident_id
    left join identities as d
        on v.person_pk = d.person_pk
)

select * from final
