{#- One row per person per day in a centre, in one zone, up to the as-of day. -#}
with placements as (
    select * from {{ ref('stg_silver__zone_placement') }}
),

bounds as (
    select
        coalesce(
            cast({{ "'" ~ var('as_of_date') ~ "'" if var('as_of_date') else 'null' }} as date),
            greatest(max(entered_on), coalesce(max(left_on), max(entered_on)))
        ) as as_of_date
    from placements
),

expanded as (
    select
        p.person_pk,
        p.admission_id,
        p.centre,
        p.zone,
        p.zone_placement_id,
        p.entered_on,
        explode(sequence(p.entered_on, date_sub(coalesce(p.left_on, date_add(b.as_of_date, 1)), 1))) as census_date
    from placements as p
    cross join bounds as b
    where
        p.entered_on <= b.as_of_date
        and (p.left_on is null or p.left_on > p.entered_on)
),

ranked as (
    -- Overlapping stays (flagged in fct_data_issues) must not count a person twice: the stay entered
    -- last holds the day.
    select
        *,
        row_number() over (
            partition by person_pk, census_date order by entered_on desc, zone_placement_id desc
        ) as rn
    from expanded
),

final as (
    select
        person_pk,
        admission_id,
        centre,
        zone,
        census_date
    from ranked
    where rn = 1
)

select * from final
