{#- delete+insert, not Snowflake's default merge: the same strategy on DuckDB and Snowflake,
    and the one fakesnow's server runs (merge's temporary view lands in the wrong catalog there) -#}
{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns'
    )
}}
-- Orders fact, incremental by landed file: each run picks up only the order
-- versions loaded since the last run (>= so a file loaded in the same instant as
-- the previous high-water mark is not missed; unique_key makes that idempotent).
-- A corrected order that lands later replaces its earlier version (unique_key).
select
    order_id,
    customer_id,
    order_ts,
    amount,
    status,
    case when status = 'cancelled' then false else true end as is_counted,
    source_file,
    loaded_at
from {{ ref('stg_landing__orders') }}
{% if is_incremental() %}
where loaded_at >= (select max(loaded_at) from {{ this }})
{% endif %}
