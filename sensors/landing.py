"""One sensor per landing zone: registers a dynamic partition per new object and requests the
runs that load them, all in one SensorResult per tick.

Run keys keep "the same version never runs twice, a new version always runs":
- per_file mode: one run per object, run_key = key@ETag.
- per_tick mode (default): one run per contiguous block of partitions the tick registered —
  normally the whole tick — as a partition range; run_key = hash of the block's key@ETag
  versions. A tick the daemon evaluates again from the same cursor lists the same versions,
  so it yields the same run key and is launched once. A block of one object keeps key@ETag.
"""

from collections.abc import Sequence
from typing import Literal

import dagster as dg

from common import settings
from common.dagster_private import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from landing.bucket import LandingBucket
from landing.objects import LandedObject, short_hash
from landing.zones import ZoneSpec
from sensors.events import QueueCursor, drain_queue
from sensors.listing import ListingCursor, list_new_objects

RunsMode = Literal["per_tick", "per_file"]


def runs_mode(zone: ZoneSpec) -> RunsMode:
    """The zone's mode, unless LANDFALL_LANDING_RUNS overrides it (read per tick, not at import)."""
    return settings.landing_runs() or zone.sensor.runs  # type: ignore[return-value]


# Dagster's documented run priority tag: the queue launches higher first, and a step's claim on
# a pool slot (the warehouse pool) is ranked by it too. Landing first: during a burst a landing
# run created after a dbt or scoring run was requested would otherwise wait behind it, and the
# files it holds would then cascade one whole dbt + scoring round later.
PRIORITY_TAG = "dagster/priority"
LANDING_PRIORITY = 10


def _tags(zone: ZoneSpec, objects: Sequence[LandedObject]) -> dict[str, str]:
    tags = {
        "landfall/zone": zone.name,
        "landfall/files": str(len(objects)),
        PRIORITY_TAG: str(LANDING_PRIORITY),
    }
    if len(objects) == 1:
        tags["landfall/etag"] = objects[0].etag
    return tags


def per_file_requests(zone: ZoneSpec, objects: Sequence[LandedObject]) -> list[dg.RunRequest]:
    return [
        dg.RunRequest(run_key=o.run_key, partition_key=o.partition_key, tags=_tags(zone, [o]))
        for o in objects
    ]


def contiguous_blocks(
    keys: Sequence[str], existing: set[str], position_of: dict[str, int]
) -> list[list[str]]:
    """Split a tick's partition keys into blocks that are contiguous in the partition order.

    Keys new to the definition are appended in `keys` order after every existing partition, so
    they form one block; keys registered earlier (re-uploads) sit where they were first added
    and are grouped with their neighbours only. `position_of` maps existing keys to positions.
    """
    new = [k for k in keys if k not in existing]
    old = sorted((k for k in keys if k in existing), key=lambda k: position_of[k])
    blocks: list[list[str]] = []
    for key in old:
        if blocks and position_of[key] == position_of[blocks[-1][-1]] + 1:
            blocks[-1].append(key)
        else:
            blocks.append([key])
    if new:
        blocks.append(new)
    return blocks


def per_tick_requests(
    zone: ZoneSpec,
    objects: Sequence[LandedObject],
    instance: dg.DagsterInstance,
    partitions: dg.DynamicPartitionsDefinition,
) -> list[dg.RunRequest]:
    """One run per contiguous block of this tick's partitions (one run for a burst of new
    objects), as a partition range the zone asset iterates."""
    latest = {o.partition_key: o for o in objects}  # a key listed twice: its newest version
    keys = list(latest)
    existing = set(instance.get_existing_dynamic_partitions(partitions.name, keys))
    # positions are needed only for re-uploaded keys; listing every partition is O(partitions)
    position_of = (
        {k: i for i, k in enumerate(instance.get_dynamic_partitions(partitions.name))}
        if existing
        else {}
    )
    requests = []
    for block in contiguous_blocks(keys, existing, position_of):
        versions = [latest[k] for k in block]
        if len(block) == 1:
            requests += per_file_requests(zone, versions)
            continue
        run_key = "batch@" + short_hash("\n".join(sorted(o.run_key for o in versions)), 24)
        requests.append(
            dg.RunRequest(
                run_key=run_key,
                tags={
                    **_tags(zone, versions),
                    ASSET_PARTITION_RANGE_START_TAG: block[0],
                    ASSET_PARTITION_RANGE_END_TAG: block[-1],
                },
            )
        )
    return requests


def build_landing_sensor(
    zone: ZoneSpec,
    job_name: str,
    partitions: dg.DynamicPartitionsDefinition,
    runs: RunsMode | None = None,
) -> dg.SensorDefinition:
    """The zone's sensor, starting `job_name` (a job of the same code location). `runs` fixes
    the mode (tests); by default the zone YAML or $LANDFALL_LANDING_RUNS."""

    @dg.sensor(
        name=f"landing_{zone.name}_sensor",
        job_name=job_name,
        minimum_interval_seconds=zone.sensor.interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Watches s3://…/{zone.prefix}{zone.pattern} and ingests each new object.",
    )
    def _sensor(context: dg.SensorEvaluationContext, landing: LandingBucket) -> dg.SensorResult:
        bucket = zone.bucket or landing.bucket
        if zone.sensor.mode == "sqs":
            queue_url = settings.variable(zone.sensor.queue_url_env or "")
            if not queue_url:
                raise ValueError(
                    f"{zone.source_file}: zone {zone.name} is in sqs mode but "
                    f"${zone.sensor.queue_url_env} is not set"
                )
            objects, queue_cursor = drain_queue(
                landing.sqs_client(),
                queue_url,
                bucket,
                zone.name,
                zone.matches,
                QueueCursor.parse(context.cursor),
                zone.sensor.max_objects_per_tick,
            )
            cursor = queue_cursor.serialize()
        else:
            objects, listing_cursor = list_new_objects(
                landing.client(),
                bucket,
                zone.prefix,
                zone.name,
                ListingCursor.parse(context.cursor),
                zone.sensor.max_objects_per_tick,
                zone.matches,
                lexical_keys=zone.sensor.lexical_keys,
            )
            cursor = listing_cursor.serialize()
        keys = list(dict.fromkeys(o.partition_key for o in objects))
        if (runs or runs_mode(zone)) == "per_file" or not objects:
            requests = per_file_requests(zone, objects)
        else:
            requests = per_tick_requests(zone, objects, context.instance, partitions)
        # retention prunes the set in its own sensor (sensors/retention.py), off this path
        partition_requests: list = [partitions.build_add_request(keys)] if keys else []
        return dg.SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=partition_requests,
            cursor=cursor,
        )

    return _sensor
