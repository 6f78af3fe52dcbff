"""A subset build (what automation starts) runs dbt with cautious indirect selection, passed to
that one invocation: a test spanning a built and an unbuilt model does not run."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.transformation import build_definitions

ORDERS = dg.AssetKey(["staging", "stg_landing__orders"])
CUSTOMERS = dg.AssetKey(["staging", "stg_landing__customers"])


def _raw_orders(path: Path) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute(
            "create schema raw; create table raw.orders (order_id bigint, customer_id bigint, "
            "order_ts timestamp, amount decimal(24, 6), status varchar, _landfall_file varchar, "
            "_landfall_etag varchar, _landfall_loaded_at timestamp)"
        )
        con.execute(
            "insert into raw.orders values (1, 7, '2024-05-01', 10, 'placed', 'orders/a.csv', "
            "'e1', '2024-06-01')"
        )


@pytest.mark.timeout(300)
def test_a_subset_build_skips_tests_that_span_an_unbuilt_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    _raw_orders(warehouse)
    monkeypatch.setenv("LANDFALL_WAREHOUSE_PATH", str(warehouse))
    monkeypatch.delenv("DBT_INDIRECT_SELECTION", raising=False)
    defs = build_definitions()
    [dbt_models] = [a for a in defs.assets or [] if ORDERS in a.keys]
    relationships = {k for k in dbt_models.check_keys if k.asset_key == ORDERS} - {
        k for k in dbt_models.check_keys if "relationships" not in k.name
    }
    assert relationships, "stg_landing__orders lost its relationships test to the customers"

    with dg.instance_for_test() as instance:
        # stg_landing__customers does not exist: an eager selection would run the relationships
        # test against it and fail the build
        result = dg.materialize(
            [dbt_models],
            selection=[ORDERS],
            instance=instance,
            resources=defs.resources,
            raise_on_error=False,
        )
    assert result.success
    materialized = {e.materialization.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {ORDERS}
    evaluated = {(e.asset_key, e.check_name) for e in result.get_asset_check_evaluations()}
    assert (ORDERS, "not_null_stg_landing__orders_order_id") in evaluated
    assert not {(k.asset_key, k.name) for k in relationships} & evaluated
    assert "DBT_INDIRECT_SELECTION" not in os.environ  # set for no one else in the process
