{#-
  生理脱毒 pass rule, pluggable per rule_version. var('detox_rules') maps a rule version to
  {item_points, pass_score}: an assessment passes only when all five items are recorded, each item
  scores item_points and the total reaches pass_score. Unknown versions fall back to
  var('detox_default_rule_version') (BJ-2021: five items x 20 points, pass only with 100).
-#}
{% macro detox_rules() -%}
    {{ return(var('detox_rules', {'BJ-2021': {'item_points': 20, 'pass_score': 100}})) }}
{%- endmacro %}

{% macro detox_pass_rule(rule_version, items, total) -%}
    {%- set rules = detox_rules() -%}
    case
    {%- for version, rule in rules.items() %}
        when {{ rule_version }} = '{{ version }}' then
            {%- for item in items %}
            coalesce({{ item }} = {{ rule['item_points'] }}, false) and
            {%- endfor %}
            coalesce({{ total }} >= {{ rule['pass_score'] }}, false)
    {%- endfor %}
        else false
    end
{%- endmacro %}
