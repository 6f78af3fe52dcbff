"""A check that belongs to a materialization runs in that materialization's run: one landed
batch is one run in the Runs list (its load, `file_accepted` and `schema_change`), and a dbt
model's `schema_change` is requested in the same automation tick as the model, never alone."""

from __future__ import annotations

import dagster as dg

from orchestration import ingestion, transformation
from orchestration.schema_changes import CHECK_NAME
from tests.landing.helpers import ZONES, ingest, tick

ORDERS_CSV = b"order_id,customer_id,order_ts,amount,status\n1,10,2024-05-01 10:00:00,10.50,placed\n"
RAW_ORDERS = dg.AssetKey(["raw", "orders"])
STG_ORDERS = dg.AssetKey(["staging", "stg_landing__orders"])


def _requested_checks(result) -> set[dg.AssetCheckKey]:
    return {
        r.key for r in result.results if isinstance(r.key, dg.AssetCheckKey) and r.true_subset.size
    }


def test_one_landing_run_carries_its_checks(bucket, warehouse):
    zone = ZONES["orders"]
    bucket.put({"orders/a.csv": ORDERS_CSV})
    # the raw tables' checks are the load step's own: no check definition of their own
    assert not list(ingestion.defs.asset_checks or [])
    with dg.instance_for_test() as instance:
        cursor = dg.evaluate_automation_conditions(defs=ingestion.defs, instance=instance).cursor
        tick(instance, zone, bucket.landing, None)
        run = ingest(instance, zone, "orders/a.csv", bucket.landing, warehouse)
        checks = {e.asset_check_key: e for e in run.get_asset_check_evaluations()}
        assert set(checks) == {
            dg.AssetCheckKey(RAW_ORDERS, "file_accepted"),
            dg.AssetCheckKey(RAW_ORDERS, CHECK_NAME),
        }
        assert all(e.passed for e in checks.values())
        assert checks[dg.AssetCheckKey(RAW_ORDERS, CHECK_NAME)].description == (
            "first table: the baseline for later changes"
        )
        # after the load, automation has nothing left to run for the raw table: no check run
        after = dg.evaluate_automation_conditions(
            defs=ingestion.defs, instance=instance, cursor=cursor
        )
        assert after.total_requested == 0 and not _requested_checks(after)
        assert len(instance.get_runs()) == 1


def test_a_models_schema_change_is_requested_with_the_model_not_after_it():
    defs = dg.Definitions(
        assets=[*ingestion.defs.assets, *transformation.defs.assets],
        asset_checks=transformation.defs.asset_checks,
        resources={**ingestion.defs.resources, **transformation.defs.resources},
    )
    stg_check = dg.AssetCheckKey(STG_ORDERS, CHECK_NAME)
    with dg.instance_for_test() as instance:
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        instance.add_dynamic_partitions("landing_orders", ["orders/1.csv"])
        instance.report_runless_asset_event(
            dg.AssetMaterialization(RAW_ORDERS, partition="orders/1.csv")
        )
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=result.cursor
        )
        # the model and its schema_change in the same tick: the sensor makes them one run
        assert result.get_num_requested(STG_ORDERS) == 1
        assert stg_check in _requested_checks(result)
        # the model's run happened: nothing is requested afterwards for its check alone
        instance.report_runless_asset_event(dg.AssetMaterialization(STG_ORDERS))
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=result.cursor
        )
        assert stg_check not in _requested_checks(result)
