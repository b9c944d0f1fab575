{#- numerator / denominator as a double, null when the denominator is 0 or null (never divides by zero). -#}
{% macro safe_rate(numerator, denominator) -%}
    case when {{ denominator }} > 0 then cast({{ numerator }} as double) / {{ denominator }} end
{%- endmacro %}
