{#-
    Rank the landed versions of one business row, newest first.

    The same order/customer/event can arrive in several landed files (re-sent or
    corrected). Keep `... = 1` to get exactly one row per key: the row with the
    latest `_landfall_loaded_at`, ties broken by the landed file's key (so the
    choice is deterministic).
-#}
{% macro latest_landed_row_number(partition_by) -%}
    row_number() over (
        partition by {{ partition_by }}
        order by _landfall_loaded_at desc, _landfall_file desc
    )
{%- endmacro %}
