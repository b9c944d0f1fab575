{#- Generic test (severity error, stops publication): a rate lies in [0, 1] (nulls allowed: no denominator). -#}
{% test unit_interval(model, column_name) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} < 0 or {{ column_name }} > 1
{% endtest %}
