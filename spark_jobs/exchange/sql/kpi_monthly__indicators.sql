-- kpi_monthly / data/indicators.csv: one row per centre and indicator of the report, long format.
-- `indicators` lists, per indicator of the package, its gold model and column (the indicator
-- registry, dbt/indicators/indicators.yml) and the model's month column (month, assessment_month or
-- admission_month). A 1/0 indicator (安全六无, a boolean in gold) is cast to 1.0 / 0.0.
with unioned as (
    {%- for ind in indicators %}
        select
            centre,
            cast({{ ind.month_column }} as date) as month,
            '{{ ind.id }}' as indicator_id,
            cast({{ ind.column }} as double) as value
        from {{ gold }}.{{ ind.model }}
        where cast({{ ind.month_column }} as date) = date '{{ first }}'
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

final as (
    select
        month,
        centre,
        indicator_id,
        value
    from unioned
)

select * from final
