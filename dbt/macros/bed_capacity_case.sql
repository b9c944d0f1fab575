{#- Beds of a centre from var('bed_capacity') (map centre -> beds); null when not configured. -#}
{% macro bed_capacity_case(column) -%}
    {%- set capacity = var('bed_capacity', {}) -%}
    {%- if capacity is mapping and capacity -%}
        case {{ column }}{% for c in capacity %} when '{{ c }}' then {{ capacity[c] }}{% endfor %} end
    {%- else -%}
        cast(null as int)
    {%- endif -%}
{%- endmacro %}
