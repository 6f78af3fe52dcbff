{#-
    A 64-bit float on every adapter. dbt.type_float() renders `float`, which is
    64-bit on Snowflake but 32-bit (REAL) on DuckDB; `double` is 64-bit on both.
-#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'landfall')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double
{%- endmacro %}
