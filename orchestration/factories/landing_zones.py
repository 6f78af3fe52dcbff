"""Landing zone factory: each zone YAML becomes a partitioned raw asset (one dynamic partition
per landed object), a job and a sensor. The ingestion step validates, loads, merges and records.
"""

import hashlib
import json
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from landing import dlt_loader, raw_load, sling_loader
from landing.identifiers import qualified, quote_identifier, quote_literal
from landing.objects import LandedObject, clean_etag, object_key_for, short_hash
from landing.quarantine import quarantine_object
from landing.validation import BadFileError, check_content, check_object
from landing.zones import ZoneSpec
from orchestration.automation import automation_condition_from_meta
from orchestration.freshness import MAX_LAG_KEY
from orchestration.pools import WAREHOUSE_POOL
from orchestration.resources import DuckDBWarehouse, LandingBucket
from orchestration.retries import retry_policy
from orchestration.schema_changes import schema_change_metadata
from orchestration.table_metadata import column_schema

STAGE_SCHEMA = "_landfall_stage"
FILE_CHECK = "file_accepted"


def zone_partitions(zone: ZoneSpec) -> dg.DynamicPartitionsDefinition:
    return dg.DynamicPartitionsDefinition(name=zone.partitions_name)


def zone_code_version(zone: ZoneSpec) -> str:
    """Changes when the zone contract or its loader configuration changes."""
    digest = hashlib.sha256(zone.model_dump_json(exclude={"sensor"}).encode())
    if zone.loader == "sling":
        digest.update(zone.sling_replication_path().read_bytes())
    return digest.hexdigest()[:16]


def _head(client, bucket: str, zone: ZoneSpec, key: str) -> LandedObject | None:
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except client.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return LandedObject(
        zone=zone.name,
        key=key,
        etag=clean_etag(head["ETag"]),
        size=int(head["ContentLength"]),
        last_modified=head["LastModified"],
    )


def _download_checked(
    client, bucket: str, zone: ZoneSpec, obj: LandedObject, folder: Path
) -> tuple[Path, int]:
    """Stream this exact version (If-Match: ETag) to a local file while validating it.

    The loaders read that copy: the bytes loaded are the bytes validated, even if the key is
    overwritten meanwhile, and the object is downloaded once.
    """
    path = folder / f"object.{zone.format}"
    body = client.get_object(Bucket=bucket, Key=obj.key, IfMatch=obj.etag)["Body"]
    with path.open("wb") as out:

        def tee() -> Iterator[bytes]:
            for chunk in body.iter_chunks(chunk_size=1 << 20):
                out.write(chunk)
                yield chunk

        records = check_content(zone, tee())
    return path, records


def _lines(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8") as fh:
        yield from fh


def _load(
    context: dg.AssetExecutionContext,
    zone: ZoneSpec,
    obj: LandedObject,
    local_copy: Path,
    warehouse: DuckDBWarehouse,
) -> tuple[dict[str, int], dict[str, float]]:
    """Load the local copy into staging, then merge it into raw with its ledger row."""
    token = short_hash(obj.run_key)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    attached: str | None = None
    if zone.loader == "sling":
        stage = sling_loader.stage_object(zone, local_copy, local_copy.parent, context.log.debug)
        attached = f"landfall_stage_{token}"
        staged = [raw_load.StagedTable(zone.table_name, "main", "stage", attached)]
        timing = {"sling_seconds": round(stage.seconds, 3), "sling_parts": stage.parts}
    else:
        result = dlt_loader.run_pipeline(
            zone, _lines(local_copy), f"{STAGE_SCHEMA}_{zone.name}_{token}", warehouse.path, token
        )
        staged, timing = result.staged, {"dlt_seconds": round(result.seconds, 3)}
    merge_started = time.monotonic()
    with warehouse.connect() as con:
        if attached:
            alias = quote_identifier(attached, "stage database")
            con.execute(f"ATTACH {quote_literal(str(stage.path))} AS {alias} (READ_ONLY)")
        try:
            counts = raw_load.merge_staged(con, zone, staged, obj, loaded_at)
        finally:
            raw_load.drop_staged(con, staged)
            if attached:
                con.execute(f"DETACH {quote_identifier(attached)}")
            if zone.loader == "dlt":
                con.execute(f'DROP SCHEMA IF EXISTS "{STAGE_SCHEMA}_{zone.name}_{token}" CASCADE')
    return counts, {**timing, "merge_seconds": round(time.monotonic() - merge_started, 3)}


def ingest_partition(
    context: dg.AssetExecutionContext,
    zone: ZoneSpec,
    landing: LandingBucket,
    warehouse: DuckDBWarehouse,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    key = object_key_for(context.partition_key)
    client = landing.client()
    bucket = zone.bucket or landing.bucket
    main_key = dg.AssetKey(zone.asset_key_path)
    obj = _head(client, bucket, zone, key)
    now = datetime.now(UTC).replace(tzinfo=None)
    counts: dict[str, int] | None = None
    timing: dict[str, float] = {}
    if obj is None:
        obj = LandedObject(zone.name, key, "deleted", 0, now)
        reason = "object was deleted from the landing zone before it could be loaded"
    else:
        reason = None
        try:
            check_object(zone, obj.key, obj.size)
            with tempfile.TemporaryDirectory(prefix="landfall-object-") as folder:
                local_copy, records = _download_checked(client, bucket, zone, obj, Path(folder))
                counts, timing = _load(context, zone, obj, local_copy, warehouse)
            if counts.get(zone.table_name, 0) != records:
                context.log.warning(
                    f"{obj.key}: validation saw {records} records, the raw table got "
                    f"{counts.get(zone.table_name)}"
                )
        except BadFileError as exc:
            reason = str(exc)

    if reason is not None:
        context.log.warning(f"quarantined s3://{bucket}/{key}: {reason}")
        if obj.etag != "deleted":
            quarantine_object(client, bucket, zone, obj, reason, now)
        with warehouse.connect() as con:
            raw_load.record_quarantine(con, zone, obj, reason, now)
    with warehouse.connect() as con:
        schemas = {t[-1]: column_schema(con, *t) for t in zone.table_keys}

    common = {
        "landfall/file": f"s3://{bucket}/{key}",
        "landfall/etag": obj.etag,
        "landfall/bytes": obj.size,
        "landfall/state": "quarantined" if reason else "loaded",
        **{f"landfall/{k}": v for k, v in timing.items()},
    }
    if reason:
        common["landfall/quarantine_reason"] = reason
    for table_key in zone.table_keys:
        table = table_key[-1]
        rows = (counts or {}).get(table, 0)
        yield dg.MaterializeResult(
            asset_key=dg.AssetKey(table_key),
            metadata={
                **common,
                "dagster/row_count": rows,
                "dagster/table_name": qualified(*table_key),
                "dagster/column_schema": schemas[table],
                # the diff against the previous load, when the columns changed
                **schema_change_metadata(context.instance, dg.AssetKey(table_key), schemas[table]),
            },
            data_version=dg.DataVersion(f"{obj.etag}:{'q' if reason else 'ok'}"),
        )
    yield dg.AssetCheckResult(
        asset_key=main_key,
        check_name=FILE_CHECK,
        passed=reason is None,
        severity=dg.AssetCheckSeverity.ERROR,
        description=reason or "file passed validation and its contract",
        metadata={"file": f"s3://{bucket}/{key}", "reason": reason or ""},
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
            )
        ],
        partitions_def=partitions,
        pool=WAREHOUSE_POOL,
        retry_policy=retry_policy("landing_zone"),
    )
    def _ingest(
        context: dg.AssetExecutionContext, landing: LandingBucket, warehouse: DuckDBWarehouse
    ):
        yield from ingest_partition(context, zone, landing, warehouse)

    return _ingest


def build_zone_job(zone: ZoneSpec) -> "UnresolvedAssetJobDefinition":
    return dg.define_asset_job(
        name=f"ingest_{zone.name}_job",
        selection=dg.AssetSelection.assets(*[dg.AssetKey(k) for k in zone.table_keys]),
        description=f"Load one landed object of the {zone.name} zone into {zone.table}.",
    )
