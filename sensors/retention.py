"""Partition retention: one sensor per zone removes the oldest handled partitions beyond the
zone's `retention.keep_partitions` from its dynamic partition set, and (`retention.forget_runs`)
deletes the runs of removed partitions from Dagster. The ledger in the warehouse stays the
permanent record of every object; a removed key that lands again is registered again by the
landing sensor and loads like a new object.

Why a sensor of its own and not the landing tick: Dagster removes dynamic partitions one key
per call (one statement and commit each: measured 3–50 ms per key on Postgres), so pruning in
every landing tick would double the cost of the tick that registers new objects once a zone is
at its limit (bench/scale.py). Here the pruning runs every `retention.interval_seconds`, off the
ingestion path, in batches of at most `retention.remove_per_tick`.

Why runs are forgotten too: removing partitions does not shrink the asset's materialization
history, and Dagster rebuilds the asset's partition status from that whole history each time
the partition set changes (the first partition query after every landing tick), so at a million
objects that query took seconds. Deleting the runs of removed partitions
(`DagsterInstance.delete_run`, which deletes their event logs) keeps the history at about the
kept partitions.

Order, across ticks: a tick asks the daemon to remove partitions K and records, in its cursor,
the runs that touched K (found by their materializations and by the partition tags they were
launched with). The daemon removes K after the tick, so those runs are examined in a later tick:
one that has finished and holds no registered partition any more is deleted; one still running,
or still holding a registered partition (a range run partly kept, a failed partition not yet
handled, a key uploaded again), stays in the cursor until it qualifies. A run that touched any
other asset, or an event without a partition, is never deleted. Each tick examines at most
`forget_runs_per_tick` recorded runs, and removes partitions only as far as the runs they add fit
in that budget, so a tick's cost stays bounded in per-file zones (one run per object) too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import dagster as dg

from common import settings
from common.chunks import chunks
from common.dagster_private import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)
from landing.zones import ZoneSpec

# keys per lookup: keeps each IN (...) list well inside every database's parameter limit
CHUNK = 500
RUN_EVENTS = {
    dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
    dg.DagsterEventType.ASSET_MATERIALIZATION,
}


@dataclass
class RetentionCursor:
    """Runs that touched removed partitions, oldest first, not yet deleted."""

    watched: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str | None) -> RetentionCursor:
        return cls(watched=list(json.loads(text)["watched"])) if text else cls()

    def serialize(self) -> str:
        return json.dumps({"watched": self.watched})


def keep_partitions(zone: ZoneSpec) -> int:
    """The zone's `retention.keep_partitions`, or `LANDFALL_RETENTION_KEEP` for every zone."""
    return settings.retention_keep() or zone.retention.keep_partitions


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
    excess = len(registered) - keep_partitions(zone)
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


def runs_of_partitions(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, keys: Sequence[str]
) -> list[str]:
    """The runs that materialized any of `keys` or were launched for them (a single partition,
    or a range starting or ending at one), oldest first; runless events have no run."""
    found: set[str] = set()
    for tag in (PARTITION_NAME_TAG, ASSET_PARTITION_RANGE_START_TAG, ASSET_PARTITION_RANGE_END_TAG):
        found.update(r.run_id for r in instance.get_runs(dg.RunsFilter(tags={tag: list(keys)})))
    cursor = None
    while True:
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=list(keys)),
            limit=1000,
            cursor=cursor,
            ascending=True,
        )
        for record in page.records:
            if record.run_id:
                found.add(record.run_id)
        if not page.has_more:
            break
        cursor = page.cursor
    records = instance.get_run_records(dg.RunsFilter(run_ids=list(found))) if found else []
    return [r.dagster_run.run_id for r in sorted(records, key=lambda r: r.create_timestamp)]


def removable_within_budget(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, removed: Sequence[str], budget: int
) -> tuple[list[str], list[str]]:
    """The leading part of `removed` (whole chunks, at least one) whose runs fit in `budget`,
    and those runs."""
    keys: list[str] = []
    runs: dict[str, None] = {}
    for chunk in chunks(removed, CHUNK):
        found = runs_of_partitions(instance, asset_key, chunk)
        if keys and len(runs) + len(set(found) - set(runs)) > budget:
            break
        keys += chunk
        runs.update(dict.fromkeys(found))
    return keys, list(runs)


def _run_partitions(
    instance: dg.DagsterInstance, run_id: str, asset_keys: set[dg.AssetKey]
) -> set[str] | None:
    """The partitions of the zone's assets (`asset_keys`: its table and any child tables) the
    run planned or materialized; None when the run has an event of another asset or one without
    a partition (not ours to delete)."""
    keys: set[str] = set()
    for record in instance.get_records_for_run(run_id, of_type=RUN_EVENTS).records:
        event = record.event_log_entry.dagster_event
        if event is None or event.asset_key not in asset_keys:
            return None
        if event.partition is not None:
            keys.add(event.partition)
            continue
        subset = getattr(event.event_specific_data, "partitions_subset", None)
        if subset is None:
            return None
        keys.update(subset.get_partition_keys())
    return keys or None


def forget_runs(
    zone: ZoneSpec,
    instance: dg.DagsterInstance,
    partitions: dg.DynamicPartitionsDefinition,
    watched: Sequence[str],
) -> tuple[list[str], list[str]]:
    """Delete the first `forget_runs_per_tick` watched runs that have finished and hold no
    registered partition. Returns (deleted, still watched): runs not examined first, then the
    examined ones that stay (unfinished, or holding a registered partition)."""
    budget = zone.retention.forget_runs_per_tick
    examined, rest = list(watched[:budget]), list(watched[budget:])
    asset_keys = {dg.AssetKey(k) for k in zone.table_keys}
    runs = {
        run.run_id: run
        for chunk in chunks(examined, CHUNK)
        for run in instance.get_runs(dg.RunsFilter(run_ids=list(chunk)))
    }
    stay: list[str] = []
    keys_of: dict[str, set[str]] = {}
    for run_id in examined:
        run = runs.get(run_id)
        if run is None:
            continue  # already deleted
        if not run.is_finished:
            stay.append(run_id)
            continue
        keys = _run_partitions(instance, run_id, asset_keys)
        if keys is not None:
            keys_of[run_id] = keys
    every_key = sorted(set().union(*keys_of.values())) if keys_of else []
    registered: set[str] = set()
    for chunk in chunks(every_key, CHUNK):
        registered |= set(instance.get_existing_dynamic_partitions(partitions.name, chunk))
    deleted = []
    for run_id, keys in keys_of.items():
        if keys & registered:
            stay.append(run_id)
        else:
            instance.delete_run(run_id)
            deleted.append(run_id)
    return deleted, rest + stay


def build_retention_sensor(
    zone: ZoneSpec, partitions: dg.DynamicPartitionsDefinition
) -> dg.SensorDefinition:
    """The zone's retention sensor: each tick forgets the runs earlier ticks' removals left
    behind and asks the daemon to remove what `retention_deletes` finds; it requests no runs."""

    @dg.sensor(
        name=f"landing_{zone.name}_retention",
        minimum_interval_seconds=(
            settings.retention_interval_seconds() or zone.retention.interval_seconds
        ),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Keeps the newest {keep_partitions(zone):,} partitions of zone "
            f"{zone.name} in Dagster; the ledger keeps every object."
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        cursor = RetentionCursor.parse(context.cursor)
        if zone.retention.forget_runs and cursor.watched:
            deleted, watched = forget_runs(zone, context.instance, partitions, cursor.watched)
            cursor.watched = watched
            if deleted:
                context.log.info(f"deleted {len(deleted)} runs of removed partitions")
        removed = retention_deletes(zone, context.instance, partitions)
        if zone.retention.forget_runs and removed:
            removed, runs = removable_within_budget(
                context.instance,
                dg.AssetKey(zone.asset_key_path),
                removed,
                zone.retention.forget_runs_per_tick,
            )
            cursor.watched = list(dict.fromkeys(cursor.watched + runs))
        requests = [partitions.build_delete_request(removed)] if removed else []
        if removed:
            context.log.info(f"removing {len(removed)} partitions of zone {zone.name}")
        return dg.SensorResult(dynamic_partitions_requests=requests, cursor=cursor.serialize())

    return _sensor
