"""One sensor per landing zone: registers a dynamic partition per new object and requests its
run, all in one SensorResult per tick. run_key = key@ETag, so a re-uploaded object with new
content runs again while the same version never runs twice."""

import os

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from landing.zones import ZoneSpec
from orchestration.resources import LandingBucket
from sensors.events import QueueCursor, drain_queue
from sensors.listing import ListingCursor, list_new_objects


def build_landing_sensor(
    zone: ZoneSpec,
    job: "UnresolvedAssetJobDefinition",
    partitions: dg.DynamicPartitionsDefinition,
) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"landing_{zone.name}_sensor",
        job=job,
        minimum_interval_seconds=zone.sensor.interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Watches s3://…/{zone.prefix}{zone.pattern} and ingests each new object.",
    )
    def _sensor(context: dg.SensorEvaluationContext, landing: LandingBucket) -> dg.SensorResult:
        bucket = zone.bucket or landing.bucket
        if zone.sensor.mode == "sqs":
            queue_url = os.environ.get(zone.sensor.queue_url_env or "")
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
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=o.run_key,
                    partition_key=o.partition_key,
                    tags={"landfall/zone": zone.name, "landfall/etag": o.etag},
                )
                for o in objects
            ],
            dynamic_partitions_requests=[partitions.build_add_request(keys)] if keys else [],
            cursor=cursor,
        )

    return _sensor
