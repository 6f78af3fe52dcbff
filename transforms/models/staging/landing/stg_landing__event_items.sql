-- One row per dlt item row (events.items list), keyed by its dlt row id.
-- Items of superseded event versions (an event re-landed in a later file gets a
-- new _dlt_id) are still here; join to stg_landing__events on event_dlt_id to
-- keep only the items of the current event version.
with landed as (

    select
        _dlt_id,
        _dlt_parent_id,
        _dlt_list_idx,
        sku,
        qty,
        price,
        _landfall_file,
        _landfall_loaded_at
    from {{ source('landing', 'events__items') }}

),

ranked as (

    select
        landed.*,
        {{ latest_landed_row_number('_dlt_id') }} as landed_rank
    from landed

)

select
    _dlt_id as event_item_id,
    _dlt_parent_id as event_dlt_id,
    cast(_dlt_list_idx as bigint) as item_index,
    sku,
    cast(qty as bigint) as qty,
    cast(price as {{ type_double() }}) as price,
    _landfall_file as source_file,
    cast(_landfall_loaded_at as {{ dbt.type_timestamp() }}) as loaded_at
from ranked
where landed_rank = 1
