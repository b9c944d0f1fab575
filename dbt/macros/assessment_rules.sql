{#-
  Diagnostic-assessment rule parameters per rule_version (身心康复, 行为表现, 社会环境与适应能力; the
  生理脱毒 rule lives in var('detox_rules'), see detox_pass_rule.sql). A province plugs its rules in by
  adding its version to var('assessment_rules'). BJ-2021 follows Beijing's 2021 细则 where it was
  available (five items x 20 points per area) and is ours where it was not (thresholds below):
    recovery_item_points / recovery_pass_score: 身心康复 passes with a total of at least 60 (ours);
    behaviour_min_avg_monthly: 行为表现 passes when the average monthly behaviour score of the period is
      at least 80 (ours), with at most behaviour_max_serious_violations serious violations and no drug
      use or escape attempt inside (the 2013 measures' exclusions);
    social_good_min_score: 社会环境与适应能力 is 良好 (good, code 1) from a total of 60, else 一般 (fair, 2).
-#}
{% macro assessment_rules() -%}
    {%- set default = {
        'BJ-2021': {
            'recovery_item_points': 20, 'recovery_pass_score': 60,
            'behaviour_min_avg_monthly': 80, 'behaviour_max_serious_violations': 0,
            'social_good_min_score': 60
        }
    } -%}
    {%- set rules = var('assessment_rules', default) -%}
    {{ return(rules if rules is mapping else default) }}
{%- endmacro %}

{#- The value of one rule parameter for the row's rule version (null when the version is not configured). -#}
{% macro assessment_rule_param(rule_version, param) -%}
    case {{ rule_version }}
    {%- for version, rule in assessment_rules().items() %}
        when '{{ version }}' then {{ rule[param] }}
    {%- endfor %}
    end
{%- endmacro %}
