with source as (
    select * from {{ source('silver', 'admission') }}
),

final as (
    select
        admission_id,
        person_pk,
        centre,
        centre_label,
        admitted_on,
        term_months,
        status,
        released_on,
        release_type,
        release_type_label
    from source
    where is_current
)

select * from final
