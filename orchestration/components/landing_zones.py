"""The landing zones as a Dagster component: every zone YAML in a folder becomes a partitioned
raw asset (one dynamic partition per landed object), its job and its sensor. The step hands the
run's objects to `landing.ingest` and reports what happened to each as metadata and a check."""

import hashlib
import json
from collections.abc import Iterator
from typing import Literal

import dagster as dg

from common.dagster_private import add_asset_metadata_by_partition, add_run_tags
from common.settings import PROJECT_ROOT
from common.yaml_config import YamlConfigError
from landing.bucket import LandingBucket
from landing.identifiers import qualified
from landing.ingest import FileLog, FileOutcome, ingest_objects, recorded_outcomes
from landing.ledger import quarantined_count
from landing.objects import object_key_for, short_hash
from landing.warehouse import LandingWarehouse
from landing.zone_scaffold import write_new_zone
from landing.zones import ZONES_DIR, ZoneSpec, load_zones
from orchestration.automation import automation_condition_from_meta
from orchestration.checks import check_result
from orchestration.freshness import MAX_LAG_KEY
from orchestration.pools import WAREHOUSE_POOL
from orchestration.retries import retry_policy
from orchestration.schema_changes import (
    Contract,
    previous_schema,
    schema_change_metadata,
    schema_change_spec,
)
from orchestration.schema_changes import evaluate as evaluate_schema
from orchestration.table_metadata import column_schema
from sensors.landing import build_landing_sensor
from sensors.retention import build_retention_sensor

FILE_CHECK = "file_accepted"
# Objects whose log lines share one event. Every event is a write to the instance's storage
# (on SQLite, a new connection and a commit): a 200-object run spent 8 s logging line by line.
LOG_OBJECTS_PER_EVENT = 100
QUARANTINED_TAG = "landfall/quarantined"  # run tag: how many files the run quarantined


def zone_partitions(zone: ZoneSpec) -> dg.DynamicPartitionsDefinition:
    return dg.DynamicPartitionsDefinition(name=zone.partitions_name)


def zone_code_version(zone: ZoneSpec) -> str:
    """Changes when the zone contract or its loader configuration changes."""
    digest = hashlib.sha256(zone.model_dump_json(exclude={"sensor"}).encode())
    if zone.loader == "sling":
        digest.update(zone.sling_replication_path().read_bytes())
    return digest.hexdigest()[:16]


def _file_metadata(bucket: str, outcome: FileOutcome) -> dict[str, object]:
    metadata: dict[str, object] = {
        "landfall/file": f"s3://{bucket}/{outcome.obj.key}",
        "landfall/etag": outcome.obj.etag,
        "landfall/bytes": outcome.obj.size,
        "landfall/state": "quarantined" if outcome.reason else "loaded",
        **{f"landfall/{k}": v for k, v in outcome.timing.items()},
    }
    if outcome.reason:
        metadata["landfall/quarantine_reason"] = outcome.reason
    if outcome.compression:
        metadata["landfall/compression"] = outcome.compression
    return metadata


def log_objects(log: dg.DagsterLogManager, files: list[FileLog]) -> None:
    """The objects' log lines, in order, one event per level per LOG_OBJECTS_PER_EVENT objects
    (a line each); warnings (quarantines, fallbacks) stay an event each, so they stand out."""
    for start in range(0, len(files), LOG_OBJECTS_PER_EVENT):
        by_level: dict[str, list[str]] = {"debug": [], "info": []}
        for file_log in files[start : start + LOG_OBJECTS_PER_EVENT]:
            for level, message in file_log.lines:
                if level in by_level:
                    by_level[level].append(message)
                else:
                    getattr(log, level)(message)
            file_log.lines.clear()
        for level, lines in by_level.items():
            if lines:
                getattr(log, level)("\n".join(lines))


def ingest_partitions(
    context: dg.AssetExecutionContext,
    zone: ZoneSpec,
    landing: LandingBucket,
    warehouse: LandingWarehouse,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Load every object of the run (one partition, or the range a sensor tick registered).

    Each object is isolated: a bad file is quarantined and the others load; an unexpected error
    on one object is raised only after the others finished, and the step's retry then loads only
    the objects no attempt has recorded yet.
    """
    client = landing.client()
    bucket = zone.bucket or landing.bucket
    main_key = dg.AssetKey(zone.asset_key_path)
    partition_keys = list(context.partition_keys)
    keys = [object_key_for(pk) for pk in partition_keys]
    # a step retry or a re-execution loads only what no earlier attempt recorded
    retried = context.retry_number > 0 or bool(context.run.parent_run_id)
    done = recorded_outcomes(zone, client, bucket, keys, warehouse) if retried else {}
    if done:
        context.log.info(f"{len(done)} of {len(keys)} objects were recorded by an earlier attempt")
    outcomes: dict[str, FileOutcome] = {
        pk: done[k] for pk, k in zip(partition_keys, keys, strict=True) if k in done
    }
    errors: dict[str, Exception] = {}
    partition_of = dict(zip(keys, partition_keys, strict=True))
    file_logs: list[FileLog] = []
    for key, log, result in ingest_objects(
        zone, client, bucket, [k for k in keys if k not in done], warehouse
    ):
        file_logs.append(log)
        if len(file_logs) == LOG_OBJECTS_PER_EVENT:
            log_objects(context.log, file_logs)
            file_logs = []
        if not isinstance(result, Exception):
            outcomes[partition_of[key]] = result
            continue
        if len(keys) == 1:
            log_objects(context.log, file_logs)
            raise result
        context.log.error(f"s3://{bucket}/{key}: {type(result).__name__}: {result}")
        errors[key] = result
    log_objects(context.log, file_logs)
    if errors:
        listed = "; ".join(f"{k}: {type(e).__name__}: {e}" for k, e in list(errors.items())[:10])
        raise dg.Failure(
            description=(
                f"{zone.name}: {len(errors)} of {len(keys)} objects failed to load "
                f"(the others are recorded; a retry loads only these): {listed}"
            )
        ) from next(iter(errors.values()))

    with warehouse.connect(read_only=True) as con:
        schemas = {t[-1]: column_schema(con, *t) for t in zone.table_keys}
        zone_quarantined = quarantined_count(con, zone.name)
    # each table's schema before this run's materialization: its schema_change verdict
    previous = {t[-1]: previous_schema(context.instance, dg.AssetKey(t)) for t in zone.table_keys}
    # The per-file verdict: each partition's own materialization carries its state and reason,
    # so a later run of other partitions never hides it.
    for table_key in zone.table_keys:
        add_asset_metadata_by_partition(
            context,
            dg.AssetKey(table_key),
            {
                partition_key: {
                    **_file_metadata(bucket, outcome),
                    "dagster/row_count": outcome.counts.get(table_key[-1], 0),
                }
                for partition_key, outcome in outcomes.items()
            },
        )

    quarantined = {
        f"s3://{bucket}/{o.obj.key}": o.reason for o in outcomes.values() if o.reason is not None
    }
    if quarantined:  # the run says so in the Runs list, filterable by tag
        add_run_tags(context.instance, context.run.run_id, {QUARANTINED_TAG: str(len(quarantined))})
    versions = sorted(f"{o.obj.etag}:{'q' if o.reason else 'ok'}" for o in outcomes.values())
    data_version = versions[0] if len(versions) == 1 else short_hash("\n".join(versions), 24)
    for table_key in zone.table_keys:
        yield dg.MaterializeResult(
            asset_key=dg.AssetKey(table_key),
            metadata={
                "dagster/table_name": qualified(*table_key),
                "dagster/column_schema": schemas[table_key[-1]],
                # the diff against the previous load, when the columns changed
                **schema_change_metadata(
                    context.instance,
                    dg.AssetKey(table_key),
                    schemas[table_key[-1]],
                    warehouse.dialect.name,
                ),
                "landfall/files_in_run": len(keys),
            },
            data_version=dg.DataVersion(data_version) if versions else None,
        )
    yield file_check_result(main_key, bucket, keys, quarantined, zone_quarantined)
    # columns and types against the previous load (WARN) and the zone's declared types (ERROR):
    # in this run, the one that changed the table, not in a check run of its own
    for table_key in zone.table_keys:
        # under the type rules of the warehouse the table is in (NUMBER(38,0) is BIGINT there);
        # a child table has no declared columns, only its diff
        declared = zone.columns if table_key == zone.asset_key_path else {}
        contract = Contract(declared, warehouse.dialect.name)
        yield evaluate_schema(
            dg.AssetKey(table_key), previous[table_key[-1]], schemas[table_key[-1]], contract
        )


def file_check_result(
    asset_key: dg.AssetKey,
    bucket: str,
    keys: list[str],
    quarantined: dict[str, str],
    zone_quarantined: int,
) -> dg.AssetCheckResult:
    """The `file_accepted` verdict on the files of this run, naming each one quarantined and
    why; how many files of the zone stay quarantined from earlier runs is said either way."""
    files = [f"s3://{bucket}/{k}" for k in keys]
    if quarantined:
        listed = "; ".join(f"{f}: {r}" for f, r in list(quarantined.items())[:20])
        more = f"; and {len(quarantined) - 20} more" if len(quarantined) > 20 else ""
        description = f"{len(quarantined)} of {len(files)} files quarantined: {listed}{more}"
    else:
        description = f"all {len(files)} files passed validation and their contract"
    earlier = zone_quarantined - len(quarantined)
    if earlier > 0:
        description += (
            f" ({earlier} other files of the zone stay quarantined from earlier runs: "
            "landfall status)"
        )
    metadata: dict[str, object] = {
        "files_in_run": len(files),
        "quarantined_count": len(quarantined),
        "quarantined": dg.MetadataValue.json(quarantined),
        "zone_quarantined_now": zone_quarantined,
    }
    if len(files) == 1:
        metadata |= {"file": files[0], "reason": quarantined.get(files[0], "")}
    return check_result(
        asset_key, FILE_CHECK, passed=not quarantined, description=description, metadata=metadata
    )


def build_zone_assets(zone: ZoneSpec) -> dg.AssetsDefinition:
    source = str(zone.source_file)
    automation = automation_condition_from_meta(
        zone.meta, asset="/".join(zone.asset_key_path), source=source, default=None
    )
    partitions = zone_partitions(zone)
    kinds = {"s3", zone.loader, "duckdb"}
    specs = [
        dg.AssetSpec(
            key=dg.AssetKey(table_key),
            group_name=zone.group,
            description=(
                zone.description
                if table_key == zone.asset_key_path
                else f"Child table of {zone.table}, normalised by dlt."
            ),
            kinds=kinds,
            partitions_def=partitions,
            automation_condition=automation,
            code_version=zone_code_version(zone),
            metadata={
                "landfall/zone": zone.name,
                "landfall/zone_file": source,
                "landfall/prefix": zone.prefix,
                "landfall/contract": json.dumps(zone.columns),
                **({MAX_LAG_KEY: zone.freshness.max_lag} if zone.freshness else {}),
            },
        )
        for table_key in zone.table_keys
    ]

    @dg.multi_asset(
        name=f"ingest_{zone.name}",
        specs=specs,
        check_specs=[
            dg.AssetCheckSpec(
                FILE_CHECK,
                asset=dg.AssetKey(zone.asset_key_path),
                description="The landed file was loaded; fails with the quarantine reason.",
            ),
            *(schema_change_spec(dg.AssetKey(k)) for k in zone.table_keys),
        ],
        partitions_def=partitions,
        pool=WAREHOUSE_POOL,
        retry_policy=retry_policy("landing_zone"),
    )
    def _ingest(
        context: dg.AssetExecutionContext,
        landing: LandingBucket,
        warehouse: dg.ResourceParam[LandingWarehouse],
    ):
        yield from ingest_partitions(context, zone, landing, warehouse)

    return _ingest


def zone_job_name(zone: ZoneSpec) -> str:
    return f"ingest_{zone.name}_job"


class LandingZonesComponent(dg.Component, dg.Model, dg.Resolvable):
    """Landing zones declared one per YAML file (schema: landing.zones.ZoneSpec)."""

    zones_dir: str = str(ZONES_DIR.relative_to(PROJECT_ROOT))

    def zones(self) -> list[ZoneSpec]:
        folder = PROJECT_ROOT / self.zones_dir
        if not folder.is_dir():
            raise YamlConfigError(f"zones_dir {self.zones_dir!r}: no folder {folder}")
        # each file validated once (file:line errors), then the cross-file rules
        return load_zones(folder)

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        assets, jobs, sensors = [], [], []
        for zone in self.zones():
            assets.append(build_zone_assets(zone))
            tables = [dg.AssetKey(k) for k in zone.table_keys]
            jobs.append(
                dg.define_asset_job(
                    name=zone_job_name(zone),
                    selection=dg.AssetSelection.assets(*tables),
                    description=f"Load the landed objects of the {zone.name} zone into "
                    f"{zone.table}.",
                )
            )
            sensors.append(build_landing_sensor(zone, zone_job_name(zone), zone_partitions(zone)))
            sensors.append(build_retention_sensor(zone, zone_partitions(zone)))
        return dg.Definitions(assets=assets, jobs=jobs, sensors=sensors)


class ZoneScaffoldParams(dg.Model):
    # csv: a Sling zone; jsonl: a dlt zone (dg's own `--format` is yaml/python, hence the name)
    file_format: Literal["csv", "jsonl"] = "csv"


class ZoneScaffolder(dg.Scaffolder[ZoneScaffoldParams]):
    """Writes a new zone where every zone lives (landing/zones/, landing/sling/), named by the
    last part of the path given to `dg scaffold defs`."""

    @classmethod
    def get_scaffold_params(cls) -> type[ZoneScaffoldParams]:
        return ZoneScaffoldParams

    def scaffold(self, request: dg.ScaffoldRequest[ZoneScaffoldParams]) -> None:
        written = write_new_zone(request.target_path.name, request.params.file_format)
        # dg made the path in the project's defs folder; the zone's files live in landing/
        if request.target_path.is_dir() and not any(request.target_path.iterdir()):
            request.target_path.rmdir()
        for path in written:
            print(f"wrote {path.relative_to(PROJECT_ROOT)}")


@dg.scaffold_with(ZoneScaffolder)
def landing_zone() -> None:
    """A new landing zone: `dg scaffold defs orchestration.components.landing_zones.landing_zone
    <name>` (in locations/ingestion) writes landing/zones/<name>.yaml, and its Sling replication
    for CSV (`--file-format jsonl`: a dlt zone); the LandingZonesComponent loads it on reload."""
