{#-
    Use the custom schema as-is (`staging`, not `<target_schema>_staging`), so the
    same layer schemas exist locally (DuckDB) and in prod (Snowflake).
    Models without a custom schema land in the target's schema.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
