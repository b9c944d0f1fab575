with source as (
    select * from {{ source('silver', 'person') }}
),

final as (
    select
        person_pk,
        sex,
        sex_label,
        ethnicity,
        birth_date,
        education,
        hukou_region,
        main_drug,
        main_drug_label
    from source
    where is_current
)

select * from final
