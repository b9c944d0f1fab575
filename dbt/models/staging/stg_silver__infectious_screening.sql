with source as (
    select * from {{ source('silver', 'infectious_screening') }}
),

final as (
    select
        screening_id,
        admission_id,
        person_pk,
        screening_type,
        screening_date,
        hiv_screen,
        hiv_confirmed,
        hcv_antibody,
        hcv_rna,
        syphilis_trust,
        syphilis_tppa,
        hbsag,
        tb_method,
        tb_result
    from source
    where is_current
)

select * from final
