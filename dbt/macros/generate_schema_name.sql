{#- Models land in the database named by +schema (gold, gold_staging), not "<target>_<schema>".
    var('schema_prefix') (e.g. example_) moves a whole build to its own databases (example_gold ...). -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ var('schema_prefix', '') }}{{ custom_schema_name if custom_schema_name is not none else target.schema }}
{%- endmacro %}
