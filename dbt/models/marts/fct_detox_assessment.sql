{#- 生理脱毒 assessment events scored from the five item records, with a pluggable pass rule (rule_version). -#}
{%- set items = ['item1_test_negative', 'item2_medication_stopped', 'item3_acute_resolved',
                 'item4_no_protracted', 'item5_no_psychiatric'] -%}
with items as (
    select * from {{ ref('stg_silver__assessment_detox_items') }}
),

headers as (
    select * from {{ ref('stg_silver__assessment') }}
),

admissions as (
    select * from {{ ref('stg_silver__admission') }}
),

latest_items as (
    select
        *,
        row_number() over (
            partition by assessment_id order by source_updated_at desc, detail_id desc
        ) as rn
    from items
),

joined as (
    select
        i.assessment_id,
        i.detail_id,
        coalesce(h.admission_id, i.admission_id) as admission_id,
        coalesce(h.person_pk, i.person_pk) as person_pk,
        coalesce(h.centre, a.centre) as centre,
        coalesce(h.assessment_date, i.drug_test_date) as assessment_date,
        h.rule_version as source_rule_version,
        coalesce(h.rule_version in ({{ detox_rule_versions_sql() }}), false) as is_known_rule,
        case
            when h.rule_version in ({{ detox_rule_versions_sql() }}) then h.rule_version
            else '{{ var("detox_default_rule_version", "BJ-2021") }}'
        end as rule_version,
        i.item1_test_negative,
        i.item2_medication_stopped,
        i.item3_acute_resolved,
        i.item4_no_protracted,
        i.item5_no_psychiatric,
        cast(i.item1_test_negative is not null as int)
        + cast(i.item2_medication_stopped is not null as int)
        + cast(i.item3_acute_resolved is not null as int)
        + cast(i.item4_no_protracted is not null as int)
        + cast(i.item5_no_psychiatric is not null as int) as items_recorded,
        coalesce(i.item1_test_negative, 0)
        + coalesce(i.item2_medication_stopped, 0)
        + coalesce(i.item3_acute_resolved, 0)
        + coalesce(i.item4_no_protracted, 0)
        + coalesce(i.item5_no_psychiatric, 0) as total_score,
        i.total_score as source_total_score,
        i.result as source_result,
        h.assessment_id is not null as has_header
    from latest_items as i
    left join headers as h
        on i.assessment_id = h.assessment_id
    left join admissions as a
        on coalesce(h.admission_id, i.admission_id) = a.admission_id
    where i.rn = 1
),

final as (
    select
        assessment_id,
        detail_id,
        admission_id,
        person_pk,
        centre,
        assessment_date,
        cast(date_trunc('month', assessment_date) as date) as assessment_month,
        rule_version,
        source_rule_version,
        is_known_rule,
        item1_test_negative,
        item2_medication_stopped,
        item3_acute_resolved,
        item4_no_protracted,
        item5_no_psychiatric,
        items_recorded,
        items_recorded = 5 as is_complete,
        total_score,
        {{ detox_pass_rule('rule_version', items, 'total_score') }} as is_pass,
        source_total_score,
        source_result,
        has_header
    from joined
)

select * from final
