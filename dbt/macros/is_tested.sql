{#- True when an infectious_test_result code shows a test was done (any code but 9 未检测, and not null). -#}
{% macro is_tested(column) -%}
    coalesce({{ column }} is not null and {{ column }} != '9', false)
{%- endmacro %}
