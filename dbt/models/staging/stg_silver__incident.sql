with source as (
    select * from {{ source('silver', 'incident') }}
),

final as (
    select
        incident_id,
        centre,
        incident_type,
        incident_type_label,
        is_liuwu,
        occurred_at,
        zone,
        detection,
        severity,
        persons_involved,
        injured,
        deaths,
        reported_to_bureau_at,
        reported_to_ministry,
        closed_on,
        result
    from source
    where is_current
)

select * from final
