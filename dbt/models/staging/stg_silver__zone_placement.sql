with source as (
    select * from {{ source('silver', 'zone_placement') }}
),

final as (
    select
        zone_placement_id,
        admission_id,
        person_pk,
        centre,
        zone,
        zone_label,
        entered_on,
        left_on
    from source
    where is_current
)

select * from final
