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

{% include "include/identities.sql" %}

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
