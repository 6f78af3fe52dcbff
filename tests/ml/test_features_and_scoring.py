"""build_features + score on the local Snowpark session (fakesnow over the DuckDB warehouse),
and the DuckDB round trip."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from snowflake.snowpark import DataFrame, Session

from landing.identifiers import validate_identifier
from ml.features import (
    FEATURE_COLUMNS,
    FeatureInputs,
    build_features,
    feature_columns,
    reference_time,
)
from ml.inputs import read_feature_inputs
from ml.scoring import DEFAULT_MODEL, SCORE_COLUMNS, ChurnModel, score
from ml.warehouse_io import SnowparkWarehouse

SCORED_AT = datetime(2024, 6, 1, 12, 0, 0)


@pytest.fixture(scope="module")
def marts_df(local_warehouse: SnowparkWarehouse) -> DataFrame:
    return local_warehouse.read_table("marts", "customer_order_features")


@pytest.fixture(scope="module")
def inputs(local_warehouse: SnowparkWarehouse) -> FeatureInputs:
    return read_feature_inputs(local_warehouse)


@pytest.fixture(scope="module")
def features_df(inputs: FeatureInputs, as_of: datetime) -> DataFrame:
    return build_features(inputs, as_of)


def _by_customer(pdf: pd.DataFrame) -> dict[int, dict[str, Any]]:
    pdf = pdf.rename(columns=str.lower)
    assert pdf["customer_id"].is_unique
    return {int(r["customer_id"]): r for r in pdf.to_dict("records")}


def test_read_table_upper_cases_columns_and_keeps_nulls(
    marts_df: DataFrame, marts_columns: list[tuple[str, str]]
) -> None:
    assert marts_df.columns == [name.upper() for name, _ in marts_columns]
    no_orders = _by_customer(marts_df.to_pandas())[2]
    assert pd.isna(no_orders["days_since_last_order"])
    assert pd.isna(no_orders["avg_order_amount"])


def test_reference_time_is_the_newest_order(inputs: FeatureInputs, as_of: datetime) -> None:
    assert reference_time(inputs.orders) == as_of
    assert reference_time(inputs.orders.filter(inputs.orders["CUSTOMER_ID"] < 0)) is None


def test_build_features_matches_hand_computed_values(
    features_df: DataFrame, expected_features: dict[int, dict[str, float]]
) -> None:
    assert features_df.columns == ["CUSTOMER_ID", *FEATURE_COLUMNS]
    assert feature_columns() == list(FEATURE_COLUMNS)
    assert len(FEATURE_COLUMNS) == 18

    pdf = features_df.to_pandas()
    assert not pdf.isna().any().any()
    rows = _by_customer(pdf)
    assert set(rows) == set(expected_features)
    for customer_id, expected in expected_features.items():
        assert set(expected) == {c.lower() for c in FEATURE_COLUMNS}
        for name, value in expected.items():
            assert rows[customer_id][name] == pytest.approx(value), (customer_id, name)


def test_build_features_ignores_what_happened_after_as_of(inputs: FeatureInputs) -> None:
    rows = _by_customer(build_features(inputs, datetime(2024, 5, 20)).to_pandas())
    # Customer 1: orders of 05-10 (10 days back) and 03-15 (66 days back) only.
    assert rows[1]["recency_days"] == 10
    assert (rows[1]["frequency"], rows[1]["monetary"]) == (2, 80.0)
    assert [rows[1][f"orders_{d}d"] for d in (7, 30, 90)] == [0, 1, 2]
    assert [rows[1][f"amount_{d}d"] for d in (7, 30, 90)] == [0.0, 50.0, 80.0]
    # Events: 05-15 page view (5 days) and 04-15 add_to_cart of 5 items (35 days).
    assert rows[1]["engagement"] == 2
    assert [rows[1][f"events_{d}d"] for d in (7, 30, 90)] == [1, 1, 2]
    assert [rows[1][f"cart_items_{d}d"] for d in (7, 30, 90)] == [0, 0, 5]
    # Customer 4: only the 05-02 order, 18 days back; customer 2's only event is later.
    assert (rows[4]["recency_days"], rows[4]["frequency"], rows[4]["orders_30d"]) == (18, 1, 1)
    assert rows[2]["engagement"] == 0


def test_build_features_rejects_frames_without_required_columns(
    inputs: FeatureInputs, as_of: datetime
) -> None:
    broken = FeatureInputs(
        customers=inputs.customers,
        orders=inputs.orders.drop("AMOUNT"),
        events=inputs.events,
        event_items=inputs.event_items,
    )
    with pytest.raises(ValueError, match="orders frame lacks columns: AMOUNT"):
        build_features(broken, as_of)
    with pytest.raises(ValueError, match="naive UTC"):
        build_features(inputs, as_of.replace(tzinfo=UTC))


def test_score_matches_plain_math(
    features_df: DataFrame,
    marts_rows: list[tuple[Any, ...]],
    expected_features: dict[int, dict[str, float]],
    reference_score: Callable[..., float],
) -> None:
    scored = score(features_df, DEFAULT_MODEL, SCORED_AT, "2024-06-01")
    assert scored.columns == list(SCORE_COLUMNS)

    pdf = scored.to_pandas()
    assert len(pdf) == len(marts_rows)
    assert not pdf.isna().any().any()
    rows = _by_customer(pdf)
    for customer_id, features in expected_features.items():
        row = rows[customer_id]
        assert row["score"] == pytest.approx(reference_score(features, DEFAULT_MODEL), abs=1e-12)
        assert 0.0 <= row["score"] <= 1.0
        assert row["model_version"] == DEFAULT_MODEL.version
        assert row["scored_at"] == SCORED_AT
        assert row["source_partition"] == "2024-06-01"
    # The priors rank lapsed and never-ordered customers above active ones.
    assert rows[3]["score"] > rows[4]["score"] > rows[1]["score"]
    assert rows[2]["score"] > rows[1]["score"]


def test_score_with_hand_picked_coefficients(session: Session) -> None:
    model = ChurnModel(
        name="toy",
        intercept=0.5,
        weights={"frequency": -1.0},
        means={"frequency": 1.0},
        scales={"frequency": 2.0},
    )
    features = session.create_dataframe([(1, 5.0), (2, 1.0), (3, 1e9)]).to_df(
        "customer_id", "frequency"
    )
    rows = _by_customer(score(features, model, SCORED_AT, None).to_pandas())
    # z = 0.5 - (x - 1) / 2
    assert rows[1]["score"] == pytest.approx(1 / (1 + math.exp(1.5)))
    assert rows[2]["score"] == pytest.approx(1 / (1 + math.exp(-0.5)))
    # A huge input saturates instead of overflowing exp().
    assert rows[3]["score"] == pytest.approx(0.0, abs=1e-20)
    assert rows[1]["source_partition"] is None


def test_score_converts_aware_timestamps_to_utc(features_df: DataFrame) -> None:
    cest = timezone(timedelta(hours=2))
    scored = score(features_df, DEFAULT_MODEL, datetime(2024, 6, 1, 14, tzinfo=cest))
    assert set(scored.to_pandas()["SCORED_AT"]) == {SCORED_AT}


def test_score_defaults_scored_at_to_now(features_df: DataFrame) -> None:
    before = datetime.now(UTC).replace(tzinfo=None)
    stamps = set(score(features_df).to_pandas()["SCORED_AT"])
    after = datetime.now(UTC).replace(tzinfo=None)
    assert len(stamps) == 1
    assert before - timedelta(seconds=1) <= stamps.pop() <= after


def test_score_rejects_missing_features(session: Session) -> None:
    features = session.create_dataframe([(1, 5.0)]).to_df("customer_id", "frequency")
    with pytest.raises(ValueError, match="RECENCY_DAYS"):
        score(features, DEFAULT_MODEL, SCORED_AT)


def test_model_version_follows_coefficients() -> None:
    base: dict[str, Any] = {
        "name": "m",
        "intercept": 0.0,
        "weights": {"a": 1.0},
        "means": {"a": 0.0},
        "scales": {"a": 1.0},
    }
    model = ChurnModel(**base)
    assert ChurnModel(**base).version == model.version
    assert model.version.startswith("m-")
    assert hash(model) == hash(ChurnModel(**base))
    for change in ({"weights": {"a": 1.1}}, {"intercept": 0.1}, {"scales": {"a": 2.0}}):
        assert ChurnModel(**{**base, **change}).version != model.version
    with pytest.raises(TypeError):
        model.weights["A"] = 2.0  # type: ignore[index]
    with pytest.raises(ValueError, match="same feature names"):
        ChurnModel(**{**base, "means": {}})
    with pytest.raises(ValueError, match="positive"):
        ChurnModel(**{**base, "scales": {"a": 0.0}})


@pytest.mark.parametrize("bad", ["", "1abc", "marts; drop table x", 'a"b', "a.b", "a b"])
def test_identifiers_are_validated(local_warehouse: SnowparkWarehouse, bad: str) -> None:
    with pytest.raises(ValueError):
        validate_identifier(bad)
    with pytest.raises(ValueError):
        local_warehouse.read_table(bad, "customer_order_features")
    with pytest.raises(ValueError):
        local_warehouse.read_table("marts", bad)


def reference_time_of(warehouse: SnowparkWarehouse) -> datetime:
    as_of = reference_time(read_feature_inputs(warehouse).orders)
    assert as_of is not None
    return as_of


def test_local_round_trip_through_duckdb(
    tmp_path: Path,
    seed_marts: Callable[[Path], None],
    expected_features: dict[int, dict[str, float]],
    assert_stored_scores: Callable[..., None],
) -> None:
    db = tmp_path / "warehouse.duckdb"
    seed_marts(db)
    with SnowparkWarehouse.local(db) as warehouse:
        assert warehouse.is_local
        features = build_features(read_feature_inputs(warehouse), reference_time_of(warehouse))
        scored = score(features, DEFAULT_MODEL, SCORED_AT, "2024-06-01")
        warehouse.write_table(scored, "ml", "customer_scores")

    # Closing the warehouse releases the file, so another writer can open it now.
    with duckdb.connect(str(db)) as con:
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'ml' AND table_name = 'customer_scores'"
            ).fetchall()
        )
        rows = con.execute(
            "SELECT customer_id, score, model_version, scored_at, source_partition "
            "FROM ml.customer_scores ORDER BY customer_id"
        ).fetchall()
        # Only the scores: the staging table of the write is gone.
        assert con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'ml'"
        ).fetchall() == [("customer_scores",)]
    assert types == {
        "customer_id": "BIGINT",
        "score": "DOUBLE",
        "model_version": "VARCHAR",
        "scored_at": "TIMESTAMP",
        "source_partition": "VARCHAR",
    }
    assert_stored_scores(rows, SCORED_AT, "2024-06-01")

    # Append inserts by name (columns deliberately reversed); NULL partitions stay NULL.
    with SnowparkWarehouse.local(db) as warehouse:
        features = build_features(read_feature_inputs(warehouse), reference_time_of(warehouse))
        later = score(features, DEFAULT_MODEL, SCORED_AT + timedelta(days=1), None)
        warehouse.write_table(
            later.select(*reversed(later.columns)), "ml", "customer_scores", "append"
        )
    with duckdb.connect(str(db)) as con:
        counts = con.execute(
            "SELECT scored_at, count(*), count(source_partition) FROM ml.customer_scores "
            "GROUP BY ALL ORDER BY 1"
        ).fetchall()
    assert counts == [(SCORED_AT, 4, 4), (SCORED_AT + timedelta(days=1), 4, 0)]

    with SnowparkWarehouse.local(db) as warehouse:
        features = build_features(read_feature_inputs(warehouse), reference_time_of(warehouse))
        later = score(features, DEFAULT_MODEL, SCORED_AT + timedelta(days=1), None)
        warehouse.write_table(later, "ml", "customer_scores", mode="overwrite")
        back = warehouse.read_table("ml", "customer_scores").to_pandas()
        assert list(back.columns) == list(SCORE_COLUMNS)
        assert len(back) == 4
        assert back["SOURCE_PARTITION"].isna().all()

        with pytest.raises(ValueError, match="mode"):
            warehouse.write_table(later, "ml", "customer_scores", mode="merge")  # type: ignore[arg-type]


def test_append_creates_missing_table_and_empty_frames_write(tmp_path: Path) -> None:
    db = tmp_path / "fresh.duckdb"
    with SnowparkWarehouse.local(db) as warehouse:
        frame = warehouse.session.create_dataframe([(1, 0.25)]).to_df("customer_id", "score")
        warehouse.write_table(frame, "ml", "scores_log", mode="append")
        warehouse.write_table(frame.filter(frame["score"] > 1.0), "ml", "empty_scores")
    with duckdb.connect(str(db)) as con:
        assert con.execute("SELECT * FROM ml.scores_log").fetchall() == [(1, 0.25)]
        assert con.execute("SELECT count(*) FROM ml.empty_scores").fetchone() == (0,)
