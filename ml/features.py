"""Churn features per customer as of a point in time, as Snowpark DataFrame operations.

Inputs are dbt models: the customers of ``marts.customer_order_features``, the orders of
``marts.fct_orders`` and the clickstream of ``staging.stg_landing__events`` with its items
(``staging.stg_landing__event_items``, the dlt child table). Only DataFrame operations are
used (no SQL strings), so the same code is pushed down to Snowflake and runs on a Snowpark
local-testing session. ``as_of`` makes the same code serve scoring (as of the newest order)
and training (as of a cutoff, with the following days as the label window).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from snowflake.snowpark import Column, DataFrame
from snowflake.snowpark import functions as F
from snowflake.snowpark.types import (
    DoubleType,
    StructField,
    StructType,
    TimestampTimeZone,
    TimestampType,
)

# Customers without orders get this recency, and real recencies are capped at it,
# so "never ordered" never looks more recent than "ordered long ago".
NO_ORDER_RECENCY_DAYS = 365
WINDOWS_DAYS: tuple[int, ...] = (7, 30, 90)

BASE_FEATURES: tuple[str, ...] = (
    "RECENCY_DAYS",
    "FREQUENCY",
    "MONETARY",
    "AVG_BASKET",
    "ENGAGEMENT",
    "CHECKOUT_RATE",
)
WINDOWED_MEASURES: tuple[str, ...] = ("ORDERS", "AMOUNT", "EVENTS", "CART_ITEMS")
FEATURE_COLUMNS: tuple[str, ...] = BASE_FEATURES + tuple(
    f"{measure}_{days}D" for measure in WINDOWED_MEASURES for days in WINDOWS_DAYS
)


@dataclass(frozen=True)
class FeatureInputs:
    """The four input frames, upper-case columns; each needs the columns listed below."""

    customers: DataFrame  # CUSTOMER_ID
    orders: DataFrame  # CUSTOMER_ID, ORDER_TS, AMOUNT, IS_COUNTED
    events: DataFrame  # CUSTOMER_ID, EVENT_TS, EVENT_TYPE, EVENT_DLT_ID
    event_items: DataFrame  # EVENT_DLT_ID, QTY


INPUT_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("CUSTOMER_ID",),
    "orders": ("CUSTOMER_ID", "ORDER_TS", "AMOUNT", "IS_COUNTED"),
    "events": ("CUSTOMER_ID", "EVENT_TS", "EVENT_TYPE", "EVENT_DLT_ID"),
    "event_items": ("EVENT_DLT_ID", "QTY"),
}


def feature_columns() -> list[str]:
    """Names of the feature columns :func:`build_features` adds (upper case, in order)."""
    return list(FEATURE_COLUMNS)


def _columns(df: DataFrame) -> set[str]:
    return {c.strip('"').upper() for c in df.columns}


def check_input_columns(inputs: FeatureInputs) -> None:
    """Raise ``ValueError`` naming the input and the columns it lacks."""
    for name, required in INPUT_COLUMNS.items():
        missing = sorted(set(required) - _columns(getattr(inputs, name)))
        if missing:
            raise ValueError(f"{name} frame lacks columns: {', '.join(missing)}")


def utc_ntz(df: DataFrame, name: str) -> Column:
    """``name`` as a UTC timestamp without zone, so it compares with naive ``as_of`` values.

    Snowflake's TIMESTAMP_TZ cast to NTZ keeps the wall clock of its offset, so convert
    to UTC first; the local reader already hands over UTC-naive values.
    """
    data_type = next(f.datatype for f in df.schema.fields if f.name.strip('"').upper() == name)
    column = F.col(name)
    if isinstance(data_type, TimestampType) and data_type.tz in (
        TimestampTimeZone.TZ,
        TimestampTimeZone.LTZ,
    ):
        column = F.convert_timezone(F.lit("UTC"), column)
    return column.cast(TimestampType(TimestampTimeZone.NTZ))


def reference_time(orders: DataFrame) -> datetime | None:
    """The newest order timestamp: "now" for scoring, so a rebuild on the same data agrees.

    None when there are no orders.
    """
    row = orders.select(F.max(utc_ntz(orders, "ORDER_TS")).alias("LATEST")).collect()[0]
    latest = row["LATEST"]
    if latest is None:
        return None
    # Local testing hands back pandas Timestamps; both sides compare as naive UTC datetimes.
    return latest.to_pydatetime() if hasattr(latest, "to_pydatetime") else latest


def _in_window(ts: Column, as_of: datetime, days: int) -> Column:
    return (ts > F.lit(as_of - timedelta(days=days))) & (ts <= F.lit(as_of))


def _flag(condition: Column) -> Column:
    return F.iff(condition, F.lit(1.0), F.lit(0.0))


def _sum_columns(names: list[str]) -> list[Column]:
    return [F.sum(F.col(name)).alias(name) for name in names]


# Rows outside the horizon are zeroed rather than filtered out, and per-row values are
# computed in a select before the group_by: the local-testing emulator misaligns columns
# computed after a filter and returns NaN for expressions aggregated over one-row groups.


def _order_features(orders: DataFrame, as_of: datetime) -> DataFrame:
    ts = utc_ntz(orders, "ORDER_TS")
    kept = F.coalesce(F.col("IS_COUNTED"), F.lit(False)) & (ts <= F.lit(as_of))
    amount = F.coalesce(F.col("AMOUNT").cast(DoubleType()), F.lit(0.0))
    per_order = orders.select(
        F.col("CUSTOMER_ID").alias("CUSTOMER_ID"),
        F.iff(kept, ts, F.lit(None)).alias("TS"),
        _flag(kept).alias("O_FREQUENCY"),
        F.iff(kept, amount, F.lit(0.0)).alias("O_MONETARY"),
        *[_flag(kept & _in_window(ts, as_of, d)).alias(f"O_ORDERS_{d}D") for d in WINDOWS_DAYS],
        *[
            F.iff(kept & _in_window(ts, as_of, d), amount, F.lit(0.0)).alias(f"O_AMOUNT_{d}D")
            for d in WINDOWS_DAYS
        ],
    )
    summed = [c for c in per_order.columns if c not in ("CUSTOMER_ID", "TS")]
    return per_order.group_by("CUSTOMER_ID").agg(
        F.max(F.col("TS")).alias("LAST_ORDER_TS"), *_sum_columns(summed)
    )


def _event_features(events: DataFrame, event_items: DataFrame, as_of: datetime) -> DataFrame:
    items = event_items.group_by("EVENT_DLT_ID").agg(
        F.sum(F.col("QTY").cast(DoubleType())).alias("ITEMS_QTY")
    )
    joined = events.join(items, on="EVENT_DLT_ID", how="left")
    ts = utc_ntz(joined, "EVENT_TS")
    kept = ts <= F.lit(as_of)
    event_type = F.col("EVENT_TYPE")
    cart_qty = F.iff(
        event_type == F.lit("add_to_cart"), F.coalesce(F.col("ITEMS_QTY"), F.lit(0.0)), F.lit(0.0)
    )
    per_event = joined.select(
        F.col("CUSTOMER_ID").alias("CUSTOMER_ID"),
        _flag(kept).alias("E_ENGAGEMENT"),
        _flag(kept & (event_type == F.lit("page_view"))).alias("E_PAGE_VIEWS"),
        _flag(kept & (event_type == F.lit("checkout"))).alias("E_CHECKOUTS"),
        *[_flag(kept & _in_window(ts, as_of, d)).alias(f"E_EVENTS_{d}D") for d in WINDOWS_DAYS],
        *[
            F.iff(kept & _in_window(ts, as_of, d), cart_qty, F.lit(0.0)).alias(f"E_CART_ITEMS_{d}D")
            for d in WINDOWS_DAYS
        ],
    )
    summed = [c for c in per_event.columns if c != "CUSTOMER_ID"]
    # Events without a customer form a NULL group that the customers join drops.
    return per_event.group_by("CUSTOMER_ID").agg(*_sum_columns(summed))


def checkpoint(df: DataFrame) -> DataFrame:
    """On a local-testing session, materialise ``df``: the emulator re-executes a plan's
    whole subtree every time a later step asks for its schema, which makes joins of
    aggregates slow. On Snowflake the frame stays lazy, so the whole feature query is one
    statement pushed down to the warehouse."""
    from snowflake.snowpark.mock._connection import MockServerConnection

    if not isinstance(df.session._conn, MockServerConnection):
        return df
    # Not cache_result(): the emulator marks left-joined columns non-nullable and then
    # refuses their NULLs. One execution gives both the rows and their types.
    from snowflake.snowpark.mock._plan import execute_mock_plan

    table = execute_mock_plan(df._plan, df._plan.expr_to_alias)
    names = list(table.columns)
    schema = StructType(
        [StructField(name, table.sf_types[name].datatype, nullable=True) for name in names]
    )
    rows = [tuple(_plain(v) for v in row) for row in table.itertuples(index=False, name=None)]
    return df.session.create_dataframe(rows, schema=schema)


def _plain(value: object) -> object:
    """numpy/pandas scalars from the emulator as Python values (NaN/NaT -> None)."""
    if value is None:
        return None
    if hasattr(value, "to_pydatetime"):
        return None if value != value else value.to_pydatetime()
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _zero(name: str) -> Column:
    return F.coalesce(F.col(name).cast(DoubleType()), F.lit(0.0))


def build_features(inputs: FeatureInputs, as_of: datetime) -> DataFrame:
    """One row per customer of ``inputs.customers``: ``CUSTOMER_ID`` plus
    :data:`FEATURE_COLUMNS`, all doubles, no nulls, from what happened up to ``as_of``
    (naive UTC; later orders and events are ignored).

    - RECENCY_DAYS: whole days elapsed from the last counted order to ``as_of``, capped at (and
      no order -> NO_ORDER_RECENCY_DAYS)
    - FREQUENCY, MONETARY, AVG_BASKET: counted (non-cancelled) orders, their total and mean
    - ENGAGEMENT: events; CHECKOUT_RATE: checkouts / page views (0 without page views)
    - ORDERS_ND, AMOUNT_ND, EVENTS_ND, CART_ITEMS_ND for N in WINDOWS_DAYS: the same
      within (as_of - N days, as_of]; cart items are item quantities of add_to_cart events
    """
    check_input_columns(inputs)
    if as_of.tzinfo is not None:
        raise ValueError("as_of must be a naive UTC datetime")
    customers = checkpoint(inputs.customers.select(F.col("CUSTOMER_ID")).distinct())
    orders = checkpoint(_order_features(inputs.orders, as_of))
    events = checkpoint(_event_features(inputs.events, inputs.event_items, as_of))
    joined = checkpoint(
        customers.join(orders, on="CUSTOMER_ID", how="left").join(
            events, on="CUSTOMER_ID", how="left"
        )
    )

    recency = F.least(
        F.coalesce(
            # Whole days elapsed; datediff("day") counts calendar boundaries on Snowflake
            # but not in the emulator, seconds agree on both.
            F.floor(
                F.datediff("second", F.col("LAST_ORDER_TS"), F.lit(as_of)).cast(DoubleType())
                / F.lit(86400.0)
            ),
            F.lit(float(NO_ORDER_RECENCY_DAYS)),
        ),
        F.lit(float(NO_ORDER_RECENCY_DAYS)),
    )
    frequency = _zero("O_FREQUENCY")
    monetary = _zero("O_MONETARY")
    page_views = _zero("E_PAGE_VIEWS")
    features = joined.select(
        F.col("CUSTOMER_ID"),
        recency.alias("RECENCY_DAYS"),
        frequency.alias("FREQUENCY"),
        monetary.alias("MONETARY"),
        F.iff(frequency > F.lit(0.0), monetary / F.iff(frequency > 0, frequency, F.lit(1.0)), 0.0)
        .cast(DoubleType())
        .alias("AVG_BASKET"),
        _zero("E_ENGAGEMENT").alias("ENGAGEMENT"),
        F.iff(
            page_views > F.lit(0.0),
            _zero("E_CHECKOUTS") / F.iff(page_views > 0, page_views, F.lit(1.0)),
            F.lit(0.0),
        )
        .cast(DoubleType())
        .alias("CHECKOUT_RATE"),
        *[_zero(f"O_ORDERS_{d}D").alias(f"ORDERS_{d}D") for d in WINDOWS_DAYS],
        *[_zero(f"O_AMOUNT_{d}D").alias(f"AMOUNT_{d}D") for d in WINDOWS_DAYS],
        *[_zero(f"E_EVENTS_{d}D").alias(f"EVENTS_{d}D") for d in WINDOWS_DAYS],
        *[_zero(f"E_CART_ITEMS_{d}D").alias(f"CART_ITEMS_{d}D") for d in WINDOWS_DAYS],
    )
    return checkpoint(features)
