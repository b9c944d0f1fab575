{#-
  生理脱毒 pass rule, pluggable per rule_version (another province adds its version to var('detox_rules')).
  Each rule: item_points (points of a met item), pass_score (minimum total) and all_items_required
  (every item must be recorded and score item_points). BJ-2021 (Beijing 实施细则): five binary items
  x 20 points, pass only with all five met, i.e. 100. A rule version not in the map never passes here;
  fct_detox_assessment maps unconfigured versions to the default rule before calling this.
-#}
{% macro detox_rules() -%}
    {{ return(var('detox_rules', {'BJ-2021': {'item_points': 20, 'pass_score': 100, 'all_items_required': true}})) }}
{%- endmacro %}

{% macro detox_pass_rule(rule_version, items, total) -%}
    {%- set rules = detox_rules() -%}
    case
    {%- for version, rule in rules.items() %}
        when {{ rule_version }} = '{{ version }}' then
            {%- if rule.get('all_items_required', true) %}
            {%- for item in items %}
            coalesce({{ item }} = {{ rule['item_points'] }}, false) and
            {%- endfor %}
            {%- endif %}
            coalesce({{ total }} >= {{ rule['pass_score'] }}, false)
    {%- endfor %}
        else false
    end
{%- endmacro %}

{#- SQL list of the configured rule versions, for `in (...)` checks. -#}
{% macro detox_rule_versions_sql() -%}
    {%- for version in detox_rules().keys() -%}'{{ version }}'{{ ', ' if not loop.last }}{%- endfor -%}
{%- endmacro %}
