"""Freshness from YAML, checked with a controlled clock: fresh within max_lag, failing after."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from dagster._core.test_utils import freeze_time

from orchestration import ingestion, transformation
from orchestration.freshness import parse_max_lag

RAW_ORDERS = dg.AssetKey(["raw", "orders"])
MART = dg.AssetKey(["marts", "customer_order_features"])
T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


def test_max_lag_parses_units_and_refuses_nonsense() -> None:
    assert parse_max_lag("26h") == timedelta(hours=26)
    assert parse_max_lag("90m") == timedelta(minutes=90)
    assert parse_max_lag("2d") == timedelta(days=2)
    with pytest.raises(ValueError, match="invalid max_lag 'soon'"):
        parse_max_lag("soon")


def _evaluate(defs: dg.Definitions, instance: dg.DagsterInstance, key: dg.AssetKey):
    checks = [c for c in defs.asset_checks or [] if key in {s.asset_key for s in c.check_specs}]
    result = dg.materialize(
        [*defs.assets, *checks],
        instance=instance,
        resources=defs.resources,
        selection=dg.AssetSelection.checks(dg.AssetCheckKey(key, "freshness_check")),
    )
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


@pytest.mark.parametrize(
    ("location", "key", "partition"),
    [(ingestion, RAW_ORDERS, "orders/a.csv"), (transformation, MART, None)],
)
def test_declared_freshness_passes_then_fails_after_max_lag(location, key, partition) -> None:
    defs = location.defs
    with dg.instance_for_test() as instance:
        if partition:
            instance.add_dynamic_partitions("landing_orders", [partition])
        with freeze_time(T0):
            instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))
        with freeze_time(T0 + timedelta(hours=25)):
            fresh = _evaluate(defs, instance, key)
        with freeze_time(T0 + timedelta(hours=27)):
            stale = _evaluate(defs, instance, key)
    assert fresh.passed
    assert not stale.passed and stale.severity == dg.AssetCheckSeverity.ERROR
