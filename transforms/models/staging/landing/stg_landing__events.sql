-- One row per event: the latest landed version of each event_id.
-- event_ts stays a time-zone-aware timestamp (as dlt loaded it): casting it to a
-- naive timestamp means different things on DuckDB (session time zone) and
-- Snowflake (drops the offset).
with landed as (

    select
        event_id,
        customer_id,
        event_ts,
        event_type,
        session__id,
        session__device__os,
        session__device__browser,
        _dlt_load_id,
        _dlt_id,
        _landfall_file,
        _landfall_loaded_at
    from {{ source('landing', 'events') }}

),

ranked as (

    select
        landed.*,
        {{ latest_landed_row_number('event_id') }} as landed_rank
    from landed

)

select
    event_id,
    _dlt_id as event_dlt_id,
    cast(customer_id as bigint) as customer_id,
    event_ts,
    lower(trim(event_type)) as event_type,
    session__id as session_id,
    session__device__os as device_os,
    session__device__browser as device_browser,
    _dlt_load_id as dlt_load_id,
    _landfall_file as source_file,
    cast(_landfall_loaded_at as {{ dbt.type_timestamp() }}) as loaded_at
from ranked
where landed_rank = 1
