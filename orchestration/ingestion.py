"""Code location `ingestion`: landing zones -> raw tables (Sling for tabular, dlt for nested)."""

from __future__ import annotations

import dagster as dg

from landing.zones import load_zones
from orchestration.automation_sensors import automation_sensor
from orchestration.factories.landing_zones import (
    build_zone_assets,
    build_zone_job,
    zone_partitions,
)
from orchestration.freshness import freshness_checks
from orchestration.resources import landing_bucket, warehouse
from orchestration.schema_changes import schema_change_checks
from sensors.landing import build_landing_sensor
from sensors.notifications import notify_on_check_failure, notify_on_run_failure
from sensors.reactions import reaction_sensors


def build_definitions() -> dg.Definitions:
    zones = load_zones()
    assets, jobs, sensors = [], [], []
    for zone in zones:
        job = build_zone_job(zone)
        assets.append(build_zone_assets(zone))
        jobs.append(job)
        sensors.append(build_landing_sensor(zone, job, zone_partitions(zone)))
    checks, freshness_sensors = freshness_checks(assets, "ingestion")
    # columns/types against the previous load (WARN) and the zone's declared types (ERROR)
    checks += schema_change_checks(
        [key for a in assets for key in a.keys],
        {dg.AssetKey(zone.asset_key_path): zone.columns for zone in zones},
        "raw_schema_change",
    )
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        # one failure sensor watches every code location
        sensors=[
            *sensors,
            automation_sensor("ingestion"),
            notify_on_run_failure,
            notify_on_check_failure,
            *reaction_sensors("ingestion"),
            *freshness_sensors,
        ],
        # one process per run: a second Python per step would double start-up on every file
        executor=dg.in_process_executor,
        resources={"landing": landing_bucket(), "warehouse": warehouse()},
    )


defs = build_definitions()
