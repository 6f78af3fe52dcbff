"""Drive the ingestion definitions the way the daemon does: sensor tick, then partition runs."""

from __future__ import annotations

import dagster as dg

from landing.bucket import LandingBucket
from landing.warehouse import DuckDBWarehouse
from landing.zones import ZoneSpec, load_zones
from orchestration.components.landing_zones import (
    build_zone_assets,
    zone_job_name,
    zone_partitions,
)
from sensors.landing import build_landing_sensor

ZONES = {zone.name: zone for zone in load_zones()}


def tick(
    instance: dg.DagsterInstance, zone: ZoneSpec, landing: LandingBucket, cursor: str | None
) -> dg.SensorResult:
    """One sensor evaluation; applies its partition requests to the instance like the daemon."""
    partitions = zone_partitions(zone)
    # the per-file mode: these tests drive one partition per run (tests/ops covers per_tick)
    sensor = build_landing_sensor(zone, zone_job_name(zone), partitions, runs="per_file")
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"landing": landing}
    )
    result = sensor(context)
    for request in result.dynamic_partitions_requests or []:
        if isinstance(request, dg.DeleteDynamicPartitionsRequest):
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
        else:
            instance.add_dynamic_partitions(
                request.partitions_def_name, list(request.partition_keys)
            )
    return result


def ingest(
    instance: dg.DagsterInstance,
    zone: ZoneSpec,
    partition_key: str,
    landing: LandingBucket,
    warehouse: DuckDBWarehouse,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [build_zone_assets(zone)],
        partition_key=partition_key,
        instance=instance,
        resources={"landing": landing, "warehouse": warehouse},
        raise_on_error=True,
    )
