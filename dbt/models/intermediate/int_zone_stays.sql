{#- One row per zone stay, ordered within its admission, with the next stay and the as-of day. -#}
with placements as (
    select * from {{ ref('stg_silver__zone_placement') }}
),

admissions as (
    select * from {{ ref('stg_silver__admission') }}
),

bounds as (
    select
        {{ smartrehab_as_of_date('greatest(max(entered_on), coalesce(max(left_on), max(entered_on)))') }} as as_of_date
    from placements
),

sequenced as (
    select
        zone_placement_id,
        admission_id,
        person_pk,
        centre,
        zone,
        zone_label,
        entered_on,
        left_on,
        row_number() over (
            partition by admission_id order by entered_on, zone_placement_id
        ) as stay_seq,
        lead(zone) over (
            partition by admission_id order by entered_on, zone_placement_id
        ) as next_zone,
        lead(entered_on) over (
            partition by admission_id order by entered_on, zone_placement_id
        ) as next_entered_on
    from placements
),

final as (
    select
        s.zone_placement_id,
        s.admission_id,
        s.person_pk,
        s.centre,
        s.zone,
        s.zone_label,
        s.entered_on,
        s.left_on,
        s.stay_seq,
        s.stay_seq = 1 as is_first_stay,
        s.next_zone,
        s.next_entered_on,
        a.released_on,
        b.as_of_date
    from sequenced as s
    left join admissions as a
        on s.admission_id = a.admission_id
    cross join bounds as b
)

select * from final
