"""The churn model's assets as declared in ml/models/churn/defs.yaml: rescoring what landed,
training that changes the version, and checks that fail clearly on broken inputs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from ml.scoring import DEFAULT_MODEL
from orchestration.components.snowpark_models import SnowparkModelsComponent
from orchestration.snowpark import SnowparkResource

# the churn folder's assets, unbound (each test brings its own Snowpark resource)
_assets = dg.build_defs_for_component(SnowparkModelsComponent()).assets or []
customer_scores = next(a for a in _assets if dg.AssetKey(["ml", "customer_scores"]) in a.keys)
churn_model = next(a for a in _assets if dg.AssetKey(["ml", "churn_model"]) in a.keys)

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore::FutureWarning:snowflake.snowpark.mock"),
]


def _run(path: Path, instance: dg.DagsterInstance, asset: Any = customer_scores) -> Any:
    return dg.materialize(
        [asset],
        instance=instance,
        resources={"snowpark": SnowparkResource(local=True, duckdb_path=str(path))},
        raise_on_error=False,
    )


def _query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def _metadata(result: Any) -> dict[str, Any]:
    [mat] = [e.materialization for e in result.get_asset_materialization_events()]
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


@pytest.mark.slow  # seven runs on the Snowpark emulator: about a minute on an idle machine
def test_a_new_orders_file_rescores_only_its_customers_and_training_changes_the_version(
    tmp_path: Path, seed_marts: Callable[[Path], None]
) -> None:
    path = tmp_path / "wh.duckdb"
    seed_marts(path)
    with dg.instance_for_test() as instance:
        first = _run(path, instance)
        assert first.success
        assert _metadata(first)["scored_this_run"] == 4
        assert _metadata(first)["model_version"] == DEFAULT_MODEL.version  # priors, untrained
        checks = {c.check_name: c.passed for c in first.get_asset_check_evaluations()}
        assert checks == {
            "feature_null_rates": True,
            "scores_in_unit_interval": True,
            "no_null_scores": True,
            "one_score_per_customer_and_version": True,
        }
        # Each score names the landed file of its customer's newest row.
        assert _query(
            path, "select customer_id, source_partition from ml.customer_scores order by 1"
        ) == [(1, "orders/a.csv"), (2, "events/a.jsonl"), (3, "orders/a.csv"), (4, "orders/b.csv")]

        # Nothing landed since: nothing rescored.
        idle = _run(path, instance)
        assert _metadata(idle)["scored_this_run"] == 0
        assert "score_mean_change" in _metadata(idle)  # drift against the previous run

        # One more orders file touching customer 1 (loaded later than everything else).
        with duckdb.connect(str(path)) as con:
            con.execute(
                "insert into marts.fct_orders values "
                "(16, 1, '2024-05-31', 25.0, 'placed', true, 'orders/c.csv', '2024-06-02')"
            )
        landed = _run(path, instance)
        assert landed.success
        assert _metadata(landed)["scored_this_run"] == 1
        assert _metadata(landed)["model_version"] == DEFAULT_MODEL.version
        assert _query(
            path,
            "select customer_id, source_partition from ml.customer_score_history "
            "where source_partition = 'orders/c.csv'",
        ) == [(1, "orders/c.csv")]
        assert _query(path, "select count(*) from ml.customer_scores") == [(4,)]
        assert _query(path, "select count(*) from ml.customer_score_history") == [(5,)]

        trained = _run(path, instance, churn_model)
        assert trained.success
        version = _metadata(trained)["model_version"]
        assert version.startswith("churn-") and version != DEFAULT_MODEL.version
        assert _query(path, "select model_version from ml.model_registry") == [(version,)]

        rescored = _run(path, instance)
        assert rescored.success
        assert _metadata(rescored)["model_version"] == version
        assert _metadata(rescored)["scored_this_run"] == 4
        assert _query(
            path,
            "select model_version, count(*), min(score) >= 0 and max(score) <= 1 "
            "from ml.customer_scores group by 1 order by 1",
        ) == sorted([(DEFAULT_MODEL.version, 4, True), (version, 4, True)])
        checks = {c.check_name: c.passed for c in rescored.get_asset_check_evaluations()}
        assert all(checks.values()), checks

        # Retraining on unchanged data keeps the version: deterministic.
        again = _run(path, instance, churn_model)
        assert _metadata(again)["model_version"] == version
        assert _query(path, "select count(*) from ml.model_registry") == [(1,)]


def test_all_null_feature_input_fails_its_check_and_keeps_old_scores(
    tmp_path: Path, seed_marts: Callable[[Path], None]
) -> None:
    path = tmp_path / "wh.duckdb"
    seed_marts(path)
    with duckdb.connect(str(path)) as con:
        # Scores of an earlier run, and then an upstream bug: amounts arrive all null.
        con.execute("create schema ml")
        for table in ("customer_scores", "customer_score_history"):
            con.execute(
                f"create table ml.{table} as select customer_id, 0.5 as score, "
                "'v0' as model_version, timestamp '2024-06-01' as scored_at, "
                "'orders/a.csv' as source_partition from marts.customer_order_features"
            )
        con.execute(
            "update marts.fct_orders set amount = null, loaded_at = ?", [datetime(2024, 7, 1)]
        )
    with dg.instance_for_test() as instance:
        broken = _run(path, instance)
        untrained = _run(path, instance, churn_model)
    assert broken.success  # a clear check failure, not a crash
    checks = {c.check_name: c for c in broken.get_asset_check_evaluations()}
    assert not checks["feature_null_rates"].passed
    assert "orders.amount" in checks["feature_null_rates"].description
    assert not checks["no_null_scores"].passed
    assert "not scored" in checks["no_null_scores"].description
    assert _query(path, "select count(*) from ml.customer_scores") == [(4,)]  # untouched
    assert _query(path, "select count(*) from ml.customer_score_history") == [(4,)]
    # Training refuses the same input with the reason.
    assert not untrained.success
    [failure] = [e for e in untrained.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "orders.amount" in str(failure.event_specific_data.error)
