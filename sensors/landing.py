"""One sensor per landing zone: registers a dynamic partition per new object and requests its
run, all in one SensorResult per tick. run_key = key@ETag, so a re-uploaded object with new
content runs again while the same version never runs twice."""

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from landing.objects import key_problem
from landing.zones import ZoneSpec
from orchestration.resources import LandingBucket
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
        cursor = ListingCursor.parse(context.cursor)
        objects, cursor = list_new_objects(
            landing.client(),
            zone.bucket or landing.bucket,
            zone.prefix,
            zone.name,
            cursor,
            zone.sensor.max_objects_per_tick,
            zone.matches,
            lexical_keys=zone.sensor.lexical_keys,
        )
        accepted = []
        for obj in objects:
            problem = key_problem(obj.key)
            if problem:
                # cannot be a partition key; the landing issue quarantines these from here
                context.log.warning(f"skipping {obj.key!r}: {problem}")
                continue
            accepted.append(obj)
        keys = list(dict.fromkeys(o.partition_key for o in accepted))
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=o.run_key,
                    partition_key=o.partition_key,
                    tags={"landfall/zone": zone.name, "landfall/etag": o.etag},
                )
                for o in accepted
            ],
            dynamic_partitions_requests=[partitions.build_add_request(keys)] if keys else [],
            cursor=cursor.serialize(),
        )

    return _sensor
