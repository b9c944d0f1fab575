{#- Item records of the 身心康复, 行为表现 and 社会环境 areas, latest record per assessment and area. -#}
with recovery as (
    select
        assessment_id,
        detail_id,
        source_updated_at,
        cast(item1_body_function is not null as int)
        + cast(item2_fitness is not null as int)
        + cast(item3_psych is not null as int)
        + cast(item4_relapse is not null as int)
        + cast(item5_theory is not null as int) as recovery_items_recorded,
        coalesce(item1_body_function, 0) + coalesce(item2_fitness, 0) + coalesce(item3_psych, 0)
        + coalesce(item4_relapse, 0) + coalesce(item5_theory, 0) as recovery_total,
        row_number() over (partition by assessment_id order by source_updated_at desc, detail_id desc) as rn
    from {{ ref('stg_silver__assessment_recovery_items') }}
),

behaviour as (
    select
        assessment_id,
        avg_monthly_score,
        serious_violations,
        drug_use_inside,
        escape_attempt,
        row_number() over (partition by assessment_id order by source_updated_at desc, detail_id desc) as rn
    from {{ ref('stg_silver__assessment_behaviour_items') }}
),

social as (
    select
        assessment_id,
        total_score as social_total,
        row_number() over (partition by assessment_id order by source_updated_at desc, detail_id desc) as rn
    from {{ ref('stg_silver__assessment_social_items') }}
),

ids as (
    select assessment_id from recovery
    union
    select assessment_id from behaviour
    union
    select assessment_id from social
),

final as (
    select
        i.assessment_id,
        r.assessment_id is not null as has_recovery_items,
        r.recovery_items_recorded,
        r.recovery_total,
        b.assessment_id is not null as has_behaviour_items,
        b.avg_monthly_score,
        b.serious_violations,
        b.drug_use_inside,
        b.escape_attempt,
        s.assessment_id is not null as has_social_items,
        s.social_total
    from ids as i
    left join recovery as r on i.assessment_id = r.assessment_id and r.rn = 1
    left join behaviour as b on i.assessment_id = b.assessment_id and b.rn = 1
    left join social as s on i.assessment_id = s.assessment_id and s.rn = 1
)

select * from final
