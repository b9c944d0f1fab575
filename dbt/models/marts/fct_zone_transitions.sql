{#- Flow between zones for a Sankey / flow chart: 00 入所前 -> first zone, zone -> next zone, last zone -> EX 解除. -#}
with stays as (
    select * from {{ ref('int_zone_stays') }}
),

edges as (
    select
        centre,
        '00' as from_zone,
        zone as to_zone,
        admission_id
    from stays
    where is_first_stay
    union all
    select
        centre,
        zone as from_zone,
        next_zone as to_zone,
        admission_id
    from stays
    where next_zone is not null
    union all
    select
        centre,
        zone as from_zone,
        'EX' as to_zone,
        admission_id
    from stays
    where next_zone is null and released_on is not null and released_on <= as_of_date
),

counts as (
    select
        centre,
        from_zone,
        to_zone,
        count(*) as transitions,
        count(distinct admission_id) as admissions
    from edges
    group by centre, from_zone, to_zone
),

final as (
    select
        centre,
        from_zone,
        {{ zone_label_sql('from_zone') }} as from_zone_label,
        to_zone,
        {{ zone_label_sql('to_zone') }} as to_zone_label,
        cast(from_zone > to_zone and to_zone != 'EX' as boolean) as is_backward,
        transitions,
        admissions
    from counts
)

select * from final
