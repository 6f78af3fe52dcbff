"""Partition retention: one sensor per zone removes the oldest handled partitions beyond the
zone's `retention.keep_partitions` from its dynamic partition set. The ledger in the warehouse
stays the permanent record of every object; a removed key that lands again is registered again
by the landing sensor and loads like a new object.

Why a sensor of its own and not the landing tick: Dagster removes dynamic partitions one key
per call (one statement and commit each: measured 3–50 ms per key on Postgres), so pruning in
every landing tick would double the cost of the tick that registers new objects once a zone is
at its limit (bench/scale.py). Here the pruning runs every `retention.interval_seconds`, off the
ingestion path, in batches of at most `retention.remove_per_tick`.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from landing.zones import ZoneSpec


def retention_deletes(
    zone: ZoneSpec,
    instance: dg.DagsterInstance,
    partitions: dg.DynamicPartitionsDefinition,
    keep: Sequence[str] = (),
) -> list[str]:
    """The oldest materialized (loaded or quarantined) partitions beyond the zone's retention,
    at most `remove_per_tick`, never one in `keep`; a partition whose run failed, or that no run
    has handled yet, stays."""
    registered = instance.get_dynamic_partitions(partitions.name)  # oldest first
    excess = len(registered) - zone.retention.keep_partitions
    if excess <= 0:
        return []
    kept = set(keep)
    oldest = registered[: min(excess, zone.retention.remove_per_tick)]
    candidates = {k for k in oldest if k not in kept}
    handled = handled_partitions(instance, dg.AssetKey(zone.asset_key_path), candidates)
    return [k for k in oldest if k in handled]


def handled_partitions(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partitions: set[str]
) -> set[str]:
    """The partitions whose latest outcome is a materialization (not a later failure).

    Two indexed lookups restricted to `partitions`: Dagster's partition status cache
    (`get_status_by_partition`) is rebuilt from the asset's whole materialization history
    whenever the dynamic partition set changes (its id hashes every key), which at a million
    landed objects is seconds per tick."""
    if not partitions:
        return set()
    done = instance.get_latest_storage_id_by_partition(
        asset_key, dg.DagsterEventType.ASSET_MATERIALIZATION, partitions
    )
    failed = instance.get_latest_storage_id_by_partition(
        asset_key, dg.DagsterEventType.ASSET_FAILED_TO_MATERIALIZE, set(done)
    )
    return {k for k, storage_id in done.items() if failed.get(k, -1) < storage_id}


def build_retention_sensor(
    zone: ZoneSpec, partitions: dg.DynamicPartitionsDefinition
) -> dg.SensorDefinition:
    """The zone's retention sensor: each tick asks the daemon to remove what
    `retention_deletes` finds; it requests no runs."""

    @dg.sensor(
        name=f"landing_{zone.name}_retention",
        minimum_interval_seconds=zone.retention.interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Keeps the newest {zone.retention.keep_partitions:,} partitions of zone "
            f"{zone.name} in Dagster; the ledger keeps every object."
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        removed = retention_deletes(zone, context.instance, partitions)
        requests = [partitions.build_delete_request(removed)] if removed else []
        if removed:
            context.log.info(f"removing {len(removed)} partitions of zone {zone.name}")
        return dg.SensorResult(dynamic_partitions_requests=requests)

    return _sensor
