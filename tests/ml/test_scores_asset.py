"""The scores asset: upserted latest scores, full history, quality checks that fail clearly."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.ml import customer_scores
from orchestration.snowpark import SnowparkResource

MART_DDL = """
create schema if not exists marts;
create or replace table marts.customer_order_features (
  customer_id bigint, country varchar, signup_ts timestamp, order_count bigint,
  total_amount double, avg_order_amount double, first_order_ts timestamp,
  last_order_ts timestamp, days_since_last_order bigint, event_count bigint,
  page_view_count bigint, add_to_cart_count bigint, checkout_count bigint,
  cart_items_qty bigint)
"""


def _mart(path: Path, days_since_last_order: list[int | None]) -> None:
    con = duckdb.connect(str(path))
    con.execute(MART_DDL)
    for cid, days in enumerate(days_since_last_order, start=1):
        con.execute(
            "insert into marts.customer_order_features values "
            "(?, 'DE', '2025-01-01', 3, 90.0, 30.0, '2026-01-01', '2026-10-01', ?, 10, 8, 1, 1, 2)",
            [cid, days],
        )
    con.close()


def _run(path: Path, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [customer_scores],
        instance=instance,
        resources={"snowpark": SnowparkResource(local=True, duckdb_path=str(path))},
    )


def _count(path: Path, sql: str) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


@pytest.mark.timeout(300)
def test_rescoring_upserts_latest_and_keeps_history(tmp_path):
    path = tmp_path / "wh.duckdb"
    _mart(path, [5, 40, 200])
    with dg.instance_for_test() as instance:
        first = _run(path, instance)
        second = _run(path, instance)
    assert first.success and second.success
    assert _count(path, "select count(*) from ml.customer_scores") == 3
    assert _count(path, "select count(*) from ml.customer_score_history") == 6
    checks = {c.check_name: c.passed for c in second.get_asset_check_evaluations()}
    assert checks == {
        "feature_null_rates": True,
        "scores_in_unit_interval": True,
        "no_null_scores": True,
        "one_score_per_customer_and_version": True,
    }
    [mat] = [e.materialization for e in second.get_asset_materialization_events()]
    assert "score_mean_change" in mat.metadata  # drift against the previous run


@pytest.mark.timeout(300)
def test_all_null_feature_input_fails_its_check_and_keeps_old_scores(tmp_path):
    path = tmp_path / "wh.duckdb"
    _mart(path, [5, 40])
    with dg.instance_for_test() as instance:
        assert _run(path, instance).success
        _mart(path, [None, None])  # an upstream bug: the column arrives all null
        broken = _run(path, instance)
    assert broken.success  # a clear check failure, not a crash
    checks = {c.check_name: c for c in broken.get_asset_check_evaluations()}
    assert not checks["feature_null_rates"].passed
    assert "days_since_last_order" in checks["feature_null_rates"].description
    assert _count(path, "select count(*) from ml.customer_scores") == 2  # untouched
    assert _count(path, "select count(*) from ml.customer_score_history") == 2
