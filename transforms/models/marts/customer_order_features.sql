-- One row per customer: order and behaviour features for the ML layer.
-- days_since_last_order is measured against the latest order_ts in the data (any
-- status), not the wall clock, so a rebuild on the same data gives the same result.
with customers as (

    select
        customer_id,
        country,
        signup_ts
    from {{ ref('stg_landing__customers') }}

),

customer_orders as (

    select * from {{ ref('int_customer_orders') }}

),

customer_events as (

    select * from {{ ref('int_customer_events') }}

),

reference_point as (

    select max(order_ts) as reference_ts
    from {{ ref('stg_landing__orders') }}

)

select
    customers.customer_id,
    customers.country,
    customers.signup_ts,
    cast(coalesce(customer_orders.order_count, 0) as bigint) as order_count,
    cast(coalesce(customer_orders.total_amount, 0) as {{ type_double() }}) as total_amount,
    cast(customer_orders.avg_order_amount as {{ type_double() }}) as avg_order_amount,
    customer_orders.first_order_ts,
    customer_orders.last_order_ts,
    cast(
        {{ dbt.datediff('customer_orders.last_order_ts', 'reference_point.reference_ts', 'day') }}
        as bigint
    ) as days_since_last_order,
    cast(coalesce(customer_events.event_count, 0) as bigint) as event_count,
    cast(coalesce(customer_events.page_view_count, 0) as bigint) as page_view_count,
    cast(coalesce(customer_events.add_to_cart_count, 0) as bigint) as add_to_cart_count,
    cast(coalesce(customer_events.checkout_count, 0) as bigint) as checkout_count,
    cast(coalesce(customer_events.cart_items_qty, 0) as bigint) as cart_items_qty
from customers
left join customer_orders
    on customers.customer_id = customer_orders.customer_id
left join customer_events
    on customers.customer_id = customer_events.customer_id
cross join reference_point
