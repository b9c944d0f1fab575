{#- numerator / denominator as a double, null when the denominator is 0 or null (never divides by zero).
    Both sides are parenthesised, so expressions such as `count(*) * 24` divide as a whole. -#}
{% macro safe_rate(numerator, denominator) -%}
    case when ({{ denominator }}) > 0 then cast(({{ numerator }}) as double) / ({{ denominator }}) end
{%- endmacro %}
