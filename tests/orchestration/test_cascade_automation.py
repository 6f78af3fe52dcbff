"""on_upstream_change across the three locations, evaluated with Dagster's own automation
evaluation: a landed file's partition cascades to dbt and scores, once, and waits while a
sibling partition is still loading."""

from __future__ import annotations

import dagster as dg

from orchestration import ingestion, ml, transformation

RAW_ORDERS = dg.AssetKey(["raw", "orders"])
STG_ORDERS = dg.AssetKey(["staging", "stg_landing__orders"])
STG_CUSTOMERS = dg.AssetKey(["staging", "stg_landing__customers"])
MART = dg.AssetKey(["marts", "customer_order_features"])
SCORES = dg.AssetKey(["ml", "customer_scores"])


def _graph() -> dg.Definitions:
    """The workspace's asset graph in one Definitions (as the daemon sees it across locations)."""
    locations = (ingestion.defs, transformation.defs, ml.defs)
    return dg.Definitions(
        assets=[a for d in locations for a in d.assets or []],
        resources={k: v for d in locations for k, v in (d.resources or {}).items()},
    )


def _land(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None = None) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))


def test_a_landed_partition_cascades_once_and_waits_for_loading_siblings() -> None:
    defs = _graph()
    with dg.instance_for_test() as instance:
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        cursor = result.cursor
        instance.add_dynamic_partitions("landing_orders", ["orders/1.csv", "orders/2.csv"])
        _land(instance, RAW_ORDERS, "orders/1.csv")
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        # orders/2.csv is registered but not loaded: staging waits (no upstream missing)
        assert result.get_num_requested(STG_ORDERS) == 0
        # raw assets are started by their sensors, never by automation
        assert result.get_num_requested(RAW_ORDERS) == 0

        _land(instance, RAW_ORDERS, "orders/2.csv")
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=result.cursor
        )
        assert result.get_num_requested(STG_ORDERS) == 1
        assert result.get_num_requested(STG_CUSTOMERS) == 0  # not downstream of orders

        # the requested run lands; the next evaluation requests it no more
        _land(instance, STG_ORDERS)
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=result.cursor
        )
        assert result.get_num_requested(STG_ORDERS) == 0


def test_scores_follow_the_mart() -> None:
    defs = _graph()
    parents = defs.resolve_asset_graph().get(SCORES).parent_keys
    assert MART in parents
    with dg.instance_for_test() as instance:
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        for parent in parents:  # every input of the model exists (none missing)
            _land(instance, parent)
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=result.cursor
        )
        assert result.get_num_requested(SCORES) == 1
        instance.report_runless_asset_event(dg.AssetMaterialization(SCORES))  # the run happened
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=result.cursor
        )
        assert result.get_num_requested(SCORES) == 0
        _land(instance, MART)
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=result.cursor
        )
        assert result.get_num_requested(SCORES) == 1
