"""Code location `ingestion`: landing zones -> raw tables (Sling for tabular, dlt for nested)."""

from __future__ import annotations

import dagster as dg

from orchestration.automation_sensors import automation_sensors
from orchestration.components.landing_zones import LandingZonesComponent
from orchestration.components.reactions import reaction_sensors
from orchestration.freshness import freshness_notifications, with_freshness_policies, zone_freshness
from orchestration.resources import landing_bucket, warehouse
from sensors.notifications import notify_on_check_failure, notify_on_run_failure


def build_definitions() -> dg.Definitions:
    landing_zones = LandingZonesComponent()
    zones = dg.build_defs_for_component(landing_zones)
    # a FreshnessPolicy on each raw table whose zone file declares `freshness:`
    freshness = zone_freshness(landing_zones.zones())
    assets = with_freshness_policies(
        [a for a in zones.assets or [] if isinstance(a, dg.AssetsDefinition)], freshness
    )
    # Every check of a raw table (file_accepted, schema_change) is reported by the load's own
    # step: one run per landed batch, no check runs of their own.
    return dg.Definitions(
        assets=assets,
        jobs=zones.jobs,
        # one failure sensor watches every code location
        sensors=[
            *(zones.sensors or []),
            *automation_sensors("ingestion", assets),
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
