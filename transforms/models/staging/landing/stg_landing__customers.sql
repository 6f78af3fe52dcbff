-- One row per customer: the latest landed version of each customer_id.
with landed as (

    select
        customer_id,
        name,
        email,
        country,
        signup_ts,
        _landfall_file,
        _landfall_loaded_at
    from {{ source('landing', 'customers') }}

),

ranked as (

    select
        landed.*,
        {{ latest_landed_row_number('customer_id') }} as landed_rank
    from landed

)

select
    cast(customer_id as bigint) as customer_id,
    name as customer_name,
    lower(trim(email)) as email,
    upper(trim(country)) as country,
    cast(signup_ts as {{ dbt.type_timestamp() }}) as signup_ts,
    _landfall_file as source_file,
    cast(_landfall_loaded_at as {{ dbt.type_timestamp() }}) as loaded_at
from ranked
where landed_rank = 1
