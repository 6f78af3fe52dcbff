-- Per customer event counts by type and the quantity of items added to cart.
-- Items join on the kept event version's dlt id, so re-landed events never double.
with events as (

    select
        event_dlt_id,
        customer_id,
        event_type
    from {{ ref('stg_landing__events') }}
    where customer_id is not null

),

event_items as (

    select
        event_dlt_id,
        sum(qty) as items_qty
    from {{ ref('stg_landing__event_items') }}
    group by event_dlt_id

)

select
    events.customer_id,
    count(*) as event_count,
    sum(case when events.event_type = 'page_view' then 1 else 0 end) as page_view_count,
    sum(case when events.event_type = 'add_to_cart' then 1 else 0 end) as add_to_cart_count,
    sum(case when events.event_type = 'checkout' then 1 else 0 end) as checkout_count,
    sum(
        case when events.event_type = 'add_to_cart' then coalesce(event_items.items_qty, 0) else 0 end
    ) as cart_items_qty
from events
left join event_items
    on events.event_dlt_id = event_items.event_dlt_id
group by events.customer_id
