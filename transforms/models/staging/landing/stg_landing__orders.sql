-- One row per order: the latest landed version of each order_id.
with landed as (

    select
        order_id,
        customer_id,
        order_ts,
        amount,
        status,
        _landfall_file,
        _landfall_loaded_at
    from {{ source('landing', 'orders') }}

),

ranked as (

    select
        landed.*,
        {{ latest_landed_row_number('order_id') }} as landed_rank
    from landed

)

select
    cast(order_id as bigint) as order_id,
    cast(customer_id as bigint) as customer_id,
    cast(order_ts as {{ dbt.type_timestamp() }}) as order_ts,
    cast(amount as decimal(24, 6)) as amount,
    lower(trim(status)) as status,
    _landfall_file as source_file,
    cast(_landfall_loaded_at as {{ dbt.type_timestamp() }}) as loaded_at
from ranked
where landed_rank = 1
