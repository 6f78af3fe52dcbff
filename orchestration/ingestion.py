"""Code location `ingestion`: landing zones -> raw tables (Sling for tabular, dlt for nested)."""

from __future__ import annotations

import dagster as dg

from orchestration.automation_sensors import automation_sensors
from orchestration.components.landing_zones import LandingZonesComponent
from orchestration.components.reactions import reaction_sensors
from orchestration.freshness import freshness_notifications, with_freshness_policies, zone_freshness
from orchestration.resources import landing_bucket, warehouse, warehouse_kind
from orchestration.schema_changes import Contract, schema_change_checks
from sensors.notifications import notify_on_check_failure, notify_on_run_failure


def build_definitions() -> dg.Definitions:
    landing_zones = LandingZonesComponent()
    zones = dg.build_defs_for_component(landing_zones)
    # a FreshnessPolicy on each raw table whose zone file declares `freshness:`
    freshness = zone_freshness(landing_zones.zones())
    assets = with_freshness_policies(
        [a for a in zones.assets or [] if isinstance(a, dg.AssetsDefinition)], freshness
    )
    # columns/types against the previous load (WARN) and the zone's declared types (ERROR),
    # under the type rules of the warehouse the raw tables are in
    kind = warehouse_kind()
    checks = schema_change_checks(
        [key for a in assets for key in a.keys],
        {
            dg.AssetKey(zone.asset_key_path): Contract(zone.columns, kind)
            for zone in landing_zones.zones()
        },
        "raw_schema_change",
    )
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=zones.jobs,
        # one failure sensor watches every code location
        sensors=[
            *(zones.sensors or []),
            *automation_sensors("ingestion", assets, checks),
            notify_on_run_failure,
            notify_on_check_failure,
            *reaction_sensors("ingestion"),
            *freshness_notifications("ingestion", freshness),
        ],
        # one process per run: a second Python per step would double start-up on every file
        executor=dg.in_process_executor,
        resources={"landing": landing_bucket(), "warehouse": warehouse()},
    )


defs = build_definitions()
