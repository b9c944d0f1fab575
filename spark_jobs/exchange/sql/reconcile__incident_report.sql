-- What the incident register holds for an incident_report package (see reconcile__population_daily.sql).
-- The persons file is reconciled only where silver.incident_person (legacy AQ_SJRY) is loaded.
with incidents as (
    select
        incident_id,
        injured,
        deaths
    from {{ gold_staging }}.stg_silver__incident
    where to_date(occurred_at) between date '{{ first }}' and date '{{ last }}'
),

final as (
    select
        'incidents' as file_id,
        'rows' as check_name,
        count(*) as check_value
    from incidents
    union all
    select
        'incidents' as file_id,
        'sum:injured' as check_name,
        coalesce(sum(injured), 0) as check_value
    from incidents
    union all
    select
        'incidents' as file_id,
        'sum:deaths' as check_name,
        coalesce(sum(deaths), 0) as check_value
    from incidents
    {%- if has_incident_person %}
        union all
        select
            'persons' as file_id,
            'rows' as check_name,
            count(*) as check_value
        from {{ silver }}.incident_person as p
        inner join incidents as i
            on p.incident_id = i.incident_id
        where p.is_current
    {%- endif %}
)

select * from final
