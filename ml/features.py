"""Churn features from ``marts.customer_order_features``, as Snowpark DataFrame operations.

Only DataFrame operations are used (no SQL strings), so the same code runs on a
Snowpark local-testing session and on Snowflake.
"""

from __future__ import annotations

from snowflake.snowpark import Column, DataFrame
from snowflake.snowpark import functions as F
from snowflake.snowpark.types import DoubleType

# Customers without orders get this recency, and real recencies are capped at it,
# so "never ordered" never looks more recent than "ordered long ago".
NO_ORDER_RECENCY_DAYS = 365

FEATURE_COLUMNS: tuple[str, ...] = (
    "RECENCY_DAYS",
    "FREQUENCY",
    "MONETARY",
    "AVG_BASKET",
    "ENGAGEMENT",
    "CHECKOUT_RATE",
)

REQUIRED_INPUT_COLUMNS: tuple[str, ...] = (
    "CUSTOMER_ID",
    "DAYS_SINCE_LAST_ORDER",
    "ORDER_COUNT",
    "TOTAL_AMOUNT",
    "AVG_ORDER_AMOUNT",
    "EVENT_COUNT",
    "PAGE_VIEW_COUNT",
    "CHECKOUT_COUNT",
)


def feature_columns() -> list[str]:
    """Names of the feature columns :func:`build_features` adds (upper case, in order)."""
    return list(FEATURE_COLUMNS)


def _double(column: Column, default: float) -> Column:
    return F.coalesce(column.cast(DoubleType()), F.lit(default))


def build_features(marts_df: DataFrame) -> DataFrame:
    """One row per customer: ``CUSTOMER_ID`` plus :data:`FEATURE_COLUMNS`, all doubles, no nulls.

    - RECENCY_DAYS: days since last order, capped at (and null ->) NO_ORDER_RECENCY_DAYS
    - FREQUENCY: order count; MONETARY: total amount; AVG_BASKET: average order amount
    - ENGAGEMENT: event count
    - CHECKOUT_RATE: checkouts / page views, 0 when there are no page views
    """
    missing = sorted(set(REQUIRED_INPUT_COLUMNS) - {c.strip('"').upper() for c in marts_df.columns})
    if missing:
        raise ValueError(f"marts frame lacks columns: {', '.join(missing)}")

    page_views = F.col("page_view_count").cast(DoubleType())
    checkout_rate = F.col("checkout_count").cast(DoubleType()) / F.iff(
        page_views == F.lit(0.0), F.lit(None).cast(DoubleType()), page_views
    )
    recency = F.least(
        _double(F.col("days_since_last_order"), NO_ORDER_RECENCY_DAYS),
        F.lit(float(NO_ORDER_RECENCY_DAYS)),
    )
    return marts_df.select(
        F.col("customer_id"),
        recency.alias("recency_days"),
        _double(F.col("order_count"), 0.0).alias("frequency"),
        _double(F.col("total_amount"), 0.0).alias("monetary"),
        _double(F.col("avg_order_amount"), 0.0).alias("avg_basket"),
        _double(F.col("event_count"), 0.0).alias("engagement"),
        F.coalesce(checkout_rate, F.lit(0.0)).alias("checkout_rate"),
    )
