{#- The as-of day: var('as_of_date') when set, else the given fallback expression (e.g. latest date in the data). -#}
{% macro smartrehab_as_of_date(fallback_expr) -%}
    coalesce(cast({{ "'" ~ var('as_of_date') ~ "'" if var('as_of_date', none) else 'null' }} as date), {{ fallback_expr }})
{%- endmacro %}
