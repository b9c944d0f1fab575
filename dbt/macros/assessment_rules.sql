{#-
  Diagnostic-assessment rule parameters per rule_version (身心康复, 行为表现, 社会环境与适应能力; the
  生理脱毒 rule lives in var('detox_rules'), see detox_pass_rule.sql). A province plugs its rules in by
  adding its version to var('assessment_rules'); a version that leaves out a parameter takes the default
  version's value (BJ-2021), so the brief's rule holds unless a version says otherwise.

  Where each BJ-2021 parameter comes from (the domain brief, §2.2-2.3):
    recovery_item_points / recovery_pass_score (20 / 100): the brief's rule (§2.3): five items x 20 points,
      合格 only with all five met, a total of 100. The item records are 0 or 20 per item, the body-function
      item 4 points per vital sign, so a total of 100 is every item met.
    behaviour_min_avg_monthly (80), behaviour_max_serious_violations (0): NOT from the brief, which has no
      行为表现 rule (§2.2: not retrievable): ours. A serious violation, drug use or an escape attempt inside
      the period fails the area (the 2013 measures' exclusions).
    social_good_min_score (60): NOT from the brief (§2.2: not retrievable): ours; 良好 (good, code 1) from a
      total of 60, else 一般 (fair, 2).
  A version that departs from the brief must say so here, parameter by parameter, as the two above do.
-#}
{% macro assessment_rules() -%}
    {%- set default = {
        'BJ-2021': {
            'recovery_item_points': 20, 'recovery_pass_score': 100,
            'behaviour_min_avg_monthly': 80, 'behaviour_max_serious_violations': 0,
            'social_good_min_score': 60
        }
    } -%}
    {%- set rules = var('assessment_rules', default) -%}
    {%- if rules is not mapping -%}{%- set rules = default -%}{%- endif -%}
    {%- set out = {} -%}
    {%- for version, rule in rules.items() -%}
        {%- set merged = dict(default['BJ-2021']) -%}
        {%- do merged.update(rule) -%}
        {%- do out.update({version: merged}) -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}

{#- The value of one rule parameter for the row's rule version (null when the version is not configured). -#}
{% macro assessment_rule_param(rule_version, param) -%}
    case {{ rule_version }}
    {%- for version, rule in assessment_rules().items() %}
        when '{{ version }}' then {{ rule[param] }}
    {%- endfor %}
    end
{%- endmacro %}
