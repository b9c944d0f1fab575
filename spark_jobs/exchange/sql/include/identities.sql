-- The persons of silver with their direct identifiers, each read in clear text from
-- silver.restricted_identity only when the receiver is authorised for it (`with_name`,
-- `with_id_number`); otherwise null. Included as a CTE by the queries that send identities.
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
