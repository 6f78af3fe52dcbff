"""Training: labels from history, determinism, versions, the registry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from ml.features import FeatureInputs
from ml.inputs import read_feature_inputs
from ml.registry import current_model, register
from ml.training import LABEL, TrainedModel, TrainingConfig, code_version, train, training_frame
from ml.warehouse_io import SnowparkWarehouse


@pytest.fixture(scope="module")
def inputs(local_warehouse: SnowparkWarehouse) -> FeatureInputs:
    return read_feature_inputs(local_warehouse)


@pytest.fixture(scope="module")
def trained(inputs: FeatureInputs) -> TrainedModel:
    return train(inputs, TrainingConfig())


@pytest.fixture(scope="module")
def trained_other(inputs: FeatureInputs) -> TrainedModel:
    return train(inputs, TrainingConfig(l2=0.5))


def test_labels_come_from_the_thirty_days_after_the_cutoff(inputs: FeatureInputs) -> None:
    built = training_frame(inputs, TrainingConfig())
    assert built is not None
    frame, cutoff = built
    assert cutoff == datetime(2024, 5, 2)  # newest order 2024-06-01 minus 30 days
    rows = {int(r["CUSTOMER_ID"]): r for r in frame.collect()}
    # Customer 2's only activity is after the cutoff: not labelled. 1 and 4 ordered after
    # the cutoff (retained, 0); 3 did not (churned, 1).
    assert {k: float(r[LABEL]) for k, r in rows.items()} == {1: 0.0, 3: 1.0, 4: 0.0}
    # Features are as of the cutoff: customer 1 had only the 03-15 order (48 days back),
    # customer 4's order at the cutoff itself counts.
    assert (rows[1]["FREQUENCY"], rows[1]["RECENCY_DAYS"], rows[1]["CART_ITEMS_90D"]) == (
        1.0,
        48.0,
        5.0,
    )
    assert (rows[4]["FREQUENCY"], rows[4]["RECENCY_DAYS"], rows[4]["ORDERS_7D"]) == (1.0, 0.0, 1.0)


def test_training_is_deterministic_and_versioned_by_data_and_code(
    inputs: FeatureInputs, trained: TrainedModel, trained_other: TrainedModel
) -> None:
    first, second = trained, train(inputs, TrainingConfig())
    assert first.model.version == second.model.version
    assert first.model.version.startswith("churn-")
    assert first.model.to_json() == second.model.to_json()
    assert first.training_data_version == second.training_data_version
    assert (first.rows, first.churn_rate) == (3, pytest.approx(1 / 3))
    # Training fits: lower loss than predicting the base rate.
    assert first.metrics["log_loss"] < first.metrics["baseline_log_loss"]
    other = trained_other
    assert code_version(TrainingConfig(l2=0.5)) != first.code_version
    assert other.training_data_version == first.training_data_version
    assert other.model.version != first.model.version


def test_new_data_gives_a_new_version(tmp_path: Path, seed_marts: Callable[[Path], None]) -> None:
    db = tmp_path / "w.duckdb"
    seed_marts(db)
    with SnowparkWarehouse.local(db) as warehouse:
        before = train(read_feature_inputs(warehouse), TrainingConfig())
    with duckdb.connect(str(db)) as con:
        con.execute(
            "INSERT INTO marts.fct_orders VALUES "
            "(32, 3, '2024-04-01', 15.0, 'shipped', true, 'orders/c.csv', '2024-06-02')"
        )
    with SnowparkWarehouse.local(db) as warehouse:
        after = train(read_feature_inputs(warehouse), TrainingConfig())
    assert after.training_data_version != before.training_data_version
    assert after.model.version != before.model.version


def test_training_refuses_data_that_cannot_train(inputs: FeatureInputs) -> None:
    only_churned = FeatureInputs(
        customers=inputs.customers.filter(inputs.customers["CUSTOMER_ID"] == 3),
        orders=inputs.orders,
        events=inputs.events,
        event_items=inputs.event_items,
    )
    with pytest.raises(ValueError, match="too few to train"):
        train(only_churned, TrainingConfig())
    no_orders = FeatureInputs(
        customers=inputs.customers,
        orders=inputs.orders.filter(inputs.orders["CUSTOMER_ID"] < 0),
        events=inputs.events,
        event_items=inputs.event_items,
    )
    with pytest.raises(ValueError, match="no orders"):
        train(no_orders, TrainingConfig())
    with pytest.raises(ValueError, match="unknown features"):
        TrainingConfig(features=("RECENCY_DAYS", "SHOE_SIZE"))


def test_registry_keeps_one_row_per_version_and_serves_the_newest(
    tmp_path: Path,
    seed_marts: Callable[[Path], None],
    trained: TrainedModel,
    trained_other: TrainedModel,
) -> None:
    db = tmp_path / "w.duckdb"
    seed_marts(db)
    with SnowparkWarehouse.local(db) as warehouse:
        assert current_model(warehouse, "churn") is None
        other = trained_other
        register(warehouse, trained, datetime(2024, 6, 2))
        register(warehouse, other, datetime(2024, 6, 3))
        register(warehouse, trained, datetime(2024, 6, 4))  # retrained on the same data
        current = current_model(warehouse, "churn")
        assert current is not None
        assert current.version == trained.model.version
        assert current.to_json() == trained.model.to_json()
        assert current_model(warehouse, "other") is None
    with duckdb.connect(str(db)) as con:
        rows = con.execute(
            "SELECT model_version, trained_at, training_rows FROM ml.model_registry ORDER BY 2"
        ).fetchall()
    assert rows == [
        (other.model.version, datetime(2024, 6, 3), 3),
        (trained.model.version, datetime(2024, 6, 4), 3),
    ]
