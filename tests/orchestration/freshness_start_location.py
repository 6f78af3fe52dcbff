"""A code location for the freshness grace tests: two assets declaring the same max lag, one with
an explicit start, wired the way the real locations wire theirs (policies applied by
orchestration.freshness, the notification sensor from sensors.notifications)."""

from datetime import UTC, datetime

import dagster as dg

from landing.zones import FreshnessSpec
from orchestration.freshness import freshness_notifications, with_freshness_policies

START = datetime(2030, 1, 1, tzinfo=UTC)
DECLARED = {
    dg.AssetKey(["raw", "from_start"]): FreshnessSpec(max_lag="26h", start=START),
    dg.AssetKey(["raw", "from_registration"]): FreshnessSpec(max_lag="26h"),
}


@dg.multi_asset(specs=[dg.AssetSpec(key) for key in DECLARED])
def landed():
    """Materialized by the tests with report_runless_asset_event."""
    for key in DECLARED:
        yield dg.MaterializeResult(asset_key=key)


defs = dg.Definitions(
    assets=with_freshness_policies([landed], DECLARED),
    sensors=freshness_notifications("test", DECLARED),
)
