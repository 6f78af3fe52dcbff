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

# Worked out by hand from MARTS_ROWS.
EXPECTED_FEATURES: dict[int, dict[str, float]] = {
    1: {"recency_days": 10, "frequency": 5, "monetary": 500.0, "avg_basket": 100.0,
        "engagement": 40, "checkout_rate": 4 / 20},
    2: {"recency_days": 365, "frequency": 0, "monetary": 0.0, "avg_basket": 0.0,
        "engagement": 3, "checkout_rate": 0.0},
    3: {"recency_days": 365, "frequency": 1, "monetary": 20.0, "avg_basket": 20.0,
        "engagement": 0, "checkout_rate": 0.0},
    4: {"recency_days": 30, "frequency": 2, "monetary": 90.0, "avg_basket": 45.0,
        "engagement": 10, "checkout_rate": 2 / 8},
}
# fmt: on


def _reference_score(features: Mapping[str, float], model: ChurnModel) -> float:
    """The model's formula in plain Python, as the oracle for the Snowpark version."""
    z = model.intercept
    for name, weight in model.weights.items():
        z += weight * (features[name.lower()] - model.means[name]) / model.scales[name]
    return 1.0 / (1.0 + math.exp(-z))


def _seed_marts(duckdb_path: Path) -> None:
    """Create marts.customer_order_features in a DuckDB file from MARTS_ROWS."""
    ddl = ", ".join(f"{name} {type_}" for name, type_ in MARTS_COLUMNS)
    placeholders = ", ".join("?" for _ in MARTS_COLUMNS)
    with duckdb.connect(str(duckdb_path)) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        con.execute(f"CREATE OR REPLACE TABLE marts.customer_order_features ({ddl})")
        con.executemany(
            f"INSERT INTO marts.customer_order_features VALUES ({placeholders})", MARTS_ROWS
        )


@pytest.fixture(scope="module")
def local_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnowparkWarehouse]:
    """One Snowpark local-testing session per module (it takes seconds to start)."""
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

    def check(rows: list[tuple[Any, ...]], scored_at: datetime, partition: str | None) -> None:
        assert [r[0] for r in rows] == sorted(expected_features)
        for customer_id, value, version, at, part in rows:
            expected = _reference_score(expected_features[customer_id], DEFAULT_MODEL)
            assert value == pytest.approx(expected, abs=1e-12)
            assert version == DEFAULT_MODEL.version
            assert at == scored_at
            assert part == partition

    return check
