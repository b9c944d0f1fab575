{#- Generic test (severity error): a daily or monthly series has every period between its first and last,
    per group (e.g. per centre, or per centre and zone). -#}
{% test no_date_gaps(model, column_name, group_by=[], period='day') %}
{%- set groups = group_by | join(', ') -%}
with spans as (
    select
        {{ groups ~ ',' if groups }}
        count(distinct {{ column_name }}) as periods,
        {%- if period == 'month' %}
        cast(months_between(max({{ column_name }}), min({{ column_name }})) as int) + 1 as expected_periods
        {%- else %}
        datediff(max({{ column_name }}), min({{ column_name }})) + 1 as expected_periods
        {%- endif %}
    from {{ model }}
    {{ 'group by ' ~ groups if groups }}
)

select * from spans where periods != expected_periods
{% endtest %}
