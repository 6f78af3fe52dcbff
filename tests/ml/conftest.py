"""Shared fixtures for the Snowpark ML tests: a tiny hand-made customer mart."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ml.scoring import DEFAULT_MODEL, ChurnModel
from ml.warehouse_io import SnowparkWarehouse

# (name, DuckDB type) in the column order of marts.customer_order_features.
MARTS_COLUMNS: list[tuple[str, str]] = [
    ("customer_id", "BIGINT"),
    ("country", "VARCHAR"),
    ("signup_ts", "TIMESTAMP"),
    ("order_count", "BIGINT"),
    ("total_amount", "DOUBLE"),
    ("avg_order_amount", "DOUBLE"),
    ("first_order_ts", "TIMESTAMP"),
    ("last_order_ts", "TIMESTAMP"),
    ("days_since_last_order", "BIGINT"),
    ("event_count", "BIGINT"),
    ("page_view_count", "BIGINT"),
    ("add_to_cart_count", "BIGINT"),
    ("checkout_count", "BIGINT"),
    ("cart_items_qty", "BIGINT"),
]

T = datetime
# fmt: off
MARTS_ROWS: list[tuple[Any, ...]] = [
    # A regular buyer.
    (1, "DE", T(2024, 1, 5), 5, 500.0, 100.0, T(2024, 1, 10), T(2024, 5, 21), 10, 40, 20, 6, 4, 9),
    # Signed up, browsed, never ordered: NULL avg/first/last/days.
    (2, "FR", T(2024, 2, 1), 0, 0.0, None, None, None, None, 3, 2, 0, 0, 0),
    # One old order (recency capped at 365) and no page views (checkout rate 0).
    (3, "US", T(2022, 6, 1), 1, 20.0, 20.0, T(2023, 1, 1), T(2023, 1, 1), 400, 0, 0, 0, 0, 0),
    # A moderate buyer.
    (4, "GB", T(2024, 3, 3), 2, 90.0, 45.0, T(2024, 4, 1), T(2024, 5, 1), 30, 10, 8, 3, 2, 4),
]

# fmt: on

# marts.fct_orders: (order_id, customer_id, order_ts, amount, status, is_counted,
# source_file, loaded_at). The newest order (2024-06-01) is the scoring reference time.
ORDERS_COLUMNS: list[tuple[str, str]] = [
    ("order_id", "BIGINT"),
    ("customer_id", "BIGINT"),
    ("order_ts", "TIMESTAMP"),
    ("amount", "DECIMAL(24,6)"),
    ("status", "VARCHAR"),
    ("is_counted", "BOOLEAN"),
    ("source_file", "VARCHAR"),
    ("loaded_at", "TIMESTAMP"),
]
LOADED = T(2024, 6, 1, 6)
# fmt: off
ORDERS_ROWS: list[tuple[Any, ...]] = [
    (11, 1, T(2024, 6, 1), 20.0, "placed", True, "orders/a.csv", LOADED),      # age 0
    (12, 1, T(2024, 5, 28), 100.0, "shipped", True, "orders/a.csv", LOADED),   # 4 days
    (13, 1, T(2024, 5, 10), 50.0, "shipped", True, "orders/a.csv", LOADED),    # 22 days
    (14, 1, T(2024, 3, 15), 30.0, "returned", True, "orders/a.csv", LOADED),   # 78 days
    (15, 1, T(2024, 5, 30), 999.0, "cancelled", False, "orders/a.csv", LOADED),
    (31, 3, T(2023, 1, 1), 20.0, "shipped", True, "orders/a.csv", LOADED),     # 517 days
    (41, 4, T(2024, 5, 25, 12), 60.0, "shipped", True, "orders/b.csv", LOADED),  # 6.5 days
    (42, 4, T(2024, 5, 2), 30.0, "shipped", True, "orders/b.csv", LOADED),     # exactly 30 days
]
# fmt: on

# staging.stg_landing__events: event_ts is zone-aware, as dlt loads it.
EVENTS_COLUMNS: list[tuple[str, str]] = [
    ("event_id", "VARCHAR"),
    ("event_dlt_id", "VARCHAR"),
    ("customer_id", "BIGINT"),
    ("event_ts", "TIMESTAMPTZ"),
    ("event_type", "VARCHAR"),
    ("source_file", "VARCHAR"),
    ("loaded_at", "TIMESTAMP"),
]
# fmt: off
EVENTS_ROWS: list[tuple[Any, ...]] = [
    ("e1", "d1", 1, "2024-05-31 10:00:00+00", "page_view", "events/a.jsonl", LOADED),
    ("e2", "d2", 1, "2024-05-31 11:00:00+00", "add_to_cart", "events/a.jsonl", LOADED),
    ("e3", "d3", 1, "2024-05-31 12:00:00+00", "checkout", "events/a.jsonl", LOADED),
    ("e4", "d4", 1, "2024-05-15 00:00:00+00", "page_view", "events/a.jsonl", LOADED),
    ("e5", "d5", 1, "2024-04-15 00:00:00+00", "add_to_cart", "events/a.jsonl", LOADED),
    # 23:30 UTC on May 31st: inside the windows only if the offset is honoured.
    ("e6", "d6", 1, "2024-06-01 01:30:00+02", "page_view", "events/a.jsonl", LOADED),
    # After the reference time: ignored.
    ("e7", "d7", 1, "2024-06-01 00:30:00+00", "page_view", "events/a.jsonl", LOADED),
    ("e8", "d8", 2, "2024-05-30 00:00:00+00", "page_view", "events/a.jsonl", LOADED),
    ("e9", "d9", None, "2024-05-30 00:00:00+00", "page_view", "events/a.jsonl", LOADED),
]
# fmt: on

EVENT_ITEMS_COLUMNS: list[tuple[str, str]] = [
    ("event_item_id", "VARCHAR"),
    ("event_dlt_id", "VARCHAR"),
    ("qty", "BIGINT"),
]
EVENT_ITEMS_ROWS: list[tuple[Any, ...]] = [
    ("i1", "d2", 2),
    ("i2", "d2", 1),
    ("i3", "d5", 5),
    ("i4", "d8", 7),  # on a page view: not a cart item
]

# Every input table of the features, by (schema, table).
INPUT_TABLES: dict[tuple[str, str], tuple[list[tuple[str, str]], list[tuple[Any, ...]]]] = {
    ("marts", "customer_order_features"): (MARTS_COLUMNS, MARTS_ROWS),
    ("marts", "fct_orders"): (ORDERS_COLUMNS, ORDERS_ROWS),
    ("staging", "stg_landing__events"): (EVENTS_COLUMNS, EVENTS_ROWS),
    ("staging", "stg_landing__event_items"): (EVENT_ITEMS_COLUMNS, EVENT_ITEMS_ROWS),
}
AS_OF = T(2024, 6, 1)


def _windows(
    orders: tuple[float, float, float],
    amount: tuple[float, float, float],
    events: tuple[float, float, float],
    cart: tuple[float, float, float],
) -> dict[str, float]:
    out: dict[str, float] = {}
    for measure, values in (
        ("orders", orders),
        ("amount", amount),
        ("events", events),
        ("cart_items", cart),
    ):
        for days, value in zip((7, 30, 90), values, strict=True):
            out[f"{measure}_{days}d"] = value
    return out


# Worked out by hand from the rows above, as of AS_OF.
# fmt: off
EXPECTED_FEATURES: dict[int, dict[str, float]] = {
    1: {"recency_days": 0, "frequency": 4, "monetary": 200.0, "avg_basket": 50.0,
        "engagement": 6, "checkout_rate": 1 / 3,
        **_windows((2, 3, 4), (120.0, 170.0, 200.0), (4, 5, 6), (3, 3, 8))},
    2: {"recency_days": 365, "frequency": 0, "monetary": 0.0, "avg_basket": 0.0,
        "engagement": 1, "checkout_rate": 0.0,
        **_windows((0, 0, 0), (0, 0, 0), (1, 1, 1), (0, 0, 0))},
    3: {"recency_days": 365, "frequency": 1, "monetary": 20.0, "avg_basket": 20.0,
        "engagement": 0, "checkout_rate": 0.0,
        **_windows((0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0))},
    # 05-25 12:00 -> 06-01 is 6.5 days; 05-02 is exactly 30 days back (outside).
    4: {"recency_days": 6, "frequency": 2, "monetary": 90.0, "avg_basket": 45.0,
        "engagement": 0, "checkout_rate": 0.0,
        **_windows((1, 1, 2), (60.0, 60.0, 90.0), (0, 0, 0), (0, 0, 0))},
}


def _reference_score(features: Mapping[str, float], model: ChurnModel) -> float:
    """The model's formula in plain Python, as the oracle for the Snowpark version."""
    z = model.intercept
    for name, weight in model.weights.items():
        z += weight * (features[name.lower()] - model.means[name]) / model.scales[name]
    z = max(-50.0, min(50.0, z))
    return 1.0 / (1.0 + math.exp(-z))


def _seed_marts(duckdb_path: Path) -> None:
    """Create every feature input table (INPUT_TABLES) in a DuckDB file."""
    with duckdb.connect(str(duckdb_path)) as con:
        for (schema, table), (columns, rows) in INPUT_TABLES.items():
            ddl = ", ".join(f"{name} {type_}" for name, type_ in columns)
            placeholders = ", ".join("?" for _ in columns)
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            con.execute(f"CREATE OR REPLACE TABLE {schema}.{table} ({ddl})")
            con.executemany(f"INSERT INTO {schema}.{table} VALUES ({placeholders})", rows)


@pytest.fixture(scope="module")
def local_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnowparkWarehouse]:
    """One local warehouse (a Snowpark session on fakesnow over the file) per module."""
    path = tmp_path_factory.mktemp("warehouse") / "landfall.duckdb"
    _seed_marts(path)
    with SnowparkWarehouse.local(path) as warehouse:
        yield warehouse


# Test modules take the data through fixtures rather than `import conftest`, which is
# ambiguous once other test folders grow their own conftest.py.
@pytest.fixture(scope="session")
def marts_columns() -> list[tuple[str, str]]:
    return list(MARTS_COLUMNS)


@pytest.fixture(scope="session")
def marts_rows() -> list[tuple[Any, ...]]:
    return list(MARTS_ROWS)


@pytest.fixture(scope="session")
def input_tables() -> dict[tuple[str, str], tuple[list[tuple[str, str]], list[tuple[Any, ...]]]]:
    return dict(INPUT_TABLES)


@pytest.fixture(scope="session")
def as_of() -> datetime:
    return AS_OF


@pytest.fixture(scope="session")
def expected_features() -> dict[int, dict[str, float]]:
    return {k: dict(v) for k, v in EXPECTED_FEATURES.items()}


@pytest.fixture(scope="session")
def reference_score() -> Callable[[Mapping[str, float], ChurnModel], float]:
    return _reference_score


@pytest.fixture(scope="session")
def seed_marts() -> Callable[[Path], None]:
    return _seed_marts


@pytest.fixture
def assert_stored_scores(
    expected_features: dict[int, dict[str, float]],
) -> Callable[[list[tuple[Any, ...]], datetime, str | None], None]:
    """Rows (customer_id, score, model_version, scored_at, source_partition) as written."""

    def check(
        rows: list[tuple[Any, ...]],
        scored_at: datetime,
        partition: str | None,
        partitions: bool = True,
    ) -> None:
        assert [r[0] for r in rows] == sorted(expected_features)
        for customer_id, value, version, at, part in rows:
            expected = _reference_score(expected_features[customer_id], DEFAULT_MODEL)
            assert value == pytest.approx(expected, abs=1e-12)
            assert version == DEFAULT_MODEL.version
            assert at == scored_at
            if partitions:
                assert part == partition

    return check


@pytest.fixture(scope="module")
def session(local_warehouse: SnowparkWarehouse) -> Any:
    return local_warehouse.session
