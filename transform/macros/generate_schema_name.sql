{#- Custom schemas are used as they are (onepassword_staging, onepassword_marts,
    onepassword_lookups) rather than prefixed with the profile's schema. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
