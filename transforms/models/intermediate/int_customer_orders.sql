-- Per customer order aggregates over non-cancelled orders (returned orders count).
with orders as (

    select
        customer_id,
        order_ts,
        amount
    from {{ ref('stg_landing__orders') }}
    where coalesce(status, '') <> 'cancelled'

)

select
    customer_id,
    count(*) as order_count,
    sum(amount) as total_amount,
    avg(amount) as avg_order_amount,
    min(order_ts) as first_order_ts,
    max(order_ts) as last_order_ts
from orders
group by customer_id
