"""Landing zone factory: each zone YAML becomes a partitioned raw asset (one dynamic partition
per landed object), a job and a sensor. The ingestion step validates, loads, merges and records.
"""

import contextlib
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from landing import dlt_loader, ledger, raw_load, sling_loader
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


@dataclass
class FileLog:
    """Log lines of one object, written to the run's log by the step's thread: objects load on
    worker threads and the step's log belongs to the step."""

    lines: list[tuple[str, str]] = field(default_factory=list)

    def debug(self, message: str) -> None:
        self.lines.append(("debug", message))

    def info(self, message: str) -> None:
        self.lines.append(("info", message))

    def warning(self, message: str) -> None:
        self.lines.append(("warning", message))

    def flush_to(self, log: Any) -> None:
        for level, message in self.lines:
            getattr(log, level)(message)
        self.lines.clear()


def _load(
    log: FileLog,
    zone: ZoneSpec,
    obj: LandedObject,
    local_copy: Path,
    warehouse: DuckDBWarehouse,
    warehouse_lock: threading.Lock,
    records: int,
) -> tuple[dict[str, int], dict[str, float]]:
    """Load the local copy into staging, then merge it into raw with its ledger row.

    Sling stages into a scratch file, so several objects stage at once; dlt writes its staging
    schema into the warehouse, which has one writer, so it runs under `warehouse_lock` like
    every merge."""
    token = short_hash(obj.run_key)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    stage_db: tuple[str, Path] | None = None
    dlt_schema: str | None = None
    with contextlib.ExitStack() as holding:
        if zone.loader == "sling":
            stage = sling_loader.stage_object(zone, local_copy, local_copy.parent, log.debug)
            stage_db = (f"landfall_stage_{token}", stage.path)
            staged = [raw_load.StagedTable(zone.table_name, "main", "stage", stage_db[0])]
            timing = {"sling_seconds": round(stage.seconds, 3), "sling_parts": stage.parts}
            holding.enter_context(warehouse_lock)
        else:
            holding.enter_context(warehouse_lock)
            dlt_schema = f"{STAGE_SCHEMA}_{zone.name}_{token}"
            result = dlt_loader.run_pipeline(
                zone, _lines(local_copy), dlt_schema, warehouse.path, token
            )
            staged, timing = result.staged, {"dlt_seconds": round(result.seconds, 3)}
        merge_started = time.monotonic()
        counts = _merge(zone, obj, warehouse, staged, loaded_at, stage_db, dlt_schema, records)
    return counts, {**timing, "merge_seconds": round(time.monotonic() - merge_started, 3)}


def _merge(
    zone: ZoneSpec,
    obj: LandedObject,
    warehouse: DuckDBWarehouse,
    staged: list[raw_load.StagedTable],
    loaded_at: datetime,
    stage_db: tuple[str, Path] | None,
    dlt_schema: str | None,
    records: int,
) -> dict[str, int]:
    """Merge the staged tables into raw; `stage_db` (alias, file) is Sling's scratch database,
    attached for the merge; `dlt_schema` is dlt's staging schema, dropped after it."""
    with warehouse.connect() as con:
        if stage_db:
            alias = quote_identifier(stage_db[0], "stage database")
            con.execute(f"ATTACH {quote_literal(str(stage_db[1]))} AS {alias} (READ_ONLY)")
        try:
            return raw_load.merge_staged(con, zone, staged, obj, loaded_at, records)
        finally:
            raw_load.drop_staged(con, staged)
            if stage_db:
                con.execute(f"DETACH {alias}")
            if dlt_schema:
                con.execute(f'DROP SCHEMA IF EXISTS "{dlt_schema}" CASCADE')


@dataclass
class FileOutcome:
    """What happened to one landed object in a run."""

    obj: LandedObject
    reason: str | None = None  # set when quarantined
    counts: dict[str, int] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)


def ingest_object(
    log: FileLog,
    zone: ZoneSpec,
    client,
    bucket: str,
    key: str,
    warehouse: DuckDBWarehouse,
    warehouse_lock: threading.Lock,
) -> FileOutcome:
    """Validate, load and merge one object, or quarantine it; either way one ledger row.
    Thread-safe: every warehouse write happens under `warehouse_lock`."""
    obj = _head(client, bucket, zone, key)
    now = datetime.now(UTC).replace(tzinfo=None)
    if obj is None:
        outcome = FileOutcome(
            LandedObject(zone.name, key, "deleted", 0, now),
            reason="object was deleted from the landing zone before it could be loaded",
        )
    else:
        outcome = FileOutcome(obj)
        try:
            check_object(zone, obj.key, obj.size)
            with tempfile.TemporaryDirectory(prefix="landfall-object-") as folder:
                local_copy, records = _download_checked(client, bucket, zone, obj, Path(folder))
                outcome.counts, outcome.timing = _load(
                    log, zone, obj, local_copy, warehouse, warehouse_lock, records
                )
        except BadFileError as exc:
            outcome.reason = str(exc)

    if outcome.reason is None:
        log.info(f"loaded s3://{bucket}/{key}: {outcome.counts.get(zone.table_name)} rows")
    else:
        log.warning(f"quarantined s3://{bucket}/{key}: {outcome.reason}")
        if outcome.obj.etag != "deleted":
            quarantine_object(client, bucket, zone, outcome.obj, outcome.reason, now)
        with warehouse_lock, warehouse.connect() as con:
            raw_load.record_quarantine(con, zone, outcome.obj, outcome.reason, now)
    return outcome


def _recorded_by_earlier_attempt(
    context: dg.AssetExecutionContext,
    zone: ZoneSpec,
    client,
    bucket: str,
    keys: list[str],
    warehouse: DuckDBWarehouse,
) -> dict[str, FileOutcome]:
    """On a step retry or a run retry/re-execution: the objects whose current version an earlier
    attempt already recorded, with that outcome. A fresh run loads every object again."""
    if context.retry_number == 0 and not context.run.parent_run_id:
        return {}
    with warehouse.connect(read_only=True) as con:
        recorded = ledger.current_entries(con, zone.name, keys)
    done: dict[str, FileOutcome] = {}
    for key in {k for k, _ in recorded}:
        obj = _head(client, bucket, zone, key)
        entry = recorded.get((key, obj.etag)) if obj else None
        if obj is not None and entry is not None:
            done[key] = FileOutcome(
                obj,
                reason=entry.reason if entry.state == ledger.QUARANTINED else None,
                counts={zone.table_name: entry.rows},
            )
    return done


def load_workers() -> int:
    """Objects staged at once in one run (`LANDFALL_LOAD_WORKERS`). A Sling run is mostly
    process start-up and waiting on its DuckDB CLI, so more than one per core pays: 20 small
    files staged 3 at a time took 0.5 s each against 1.3 s one at a time on 2 cores."""
    value = os.environ.get("LANDFALL_LOAD_WORKERS", "")
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"LANDFALL_LOAD_WORKERS must be a positive integer, not {value!r}")
        return int(value)
    return max(2, min(8, len(os.sched_getaffinity(0)) + 1))


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
    return metadata


def ingest_partitions(
    context: dg.AssetExecutionContext,
    zone: ZoneSpec,
    landing: LandingBucket,
    warehouse: DuckDBWarehouse,
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
    done = _recorded_by_earlier_attempt(context, zone, client, bucket, keys, warehouse)
    if done:
        context.log.info(f"{len(done)} of {len(keys)} objects were recorded by an earlier attempt")
    outcomes: dict[str, FileOutcome] = {}
    errors: dict[str, Exception] = {}
    todo = [(pk, k) for pk, k in zip(partition_keys, keys, strict=True) if k not in done]
    outcomes.update({pk: done[k] for pk, k in zip(partition_keys, keys, strict=True) if k in done})
    warehouse_lock = threading.Lock()

    def ingest(key: str) -> tuple[FileLog, FileOutcome | Exception]:
        log = FileLog()
        try:
            return log, ingest_object(log, zone, client, bucket, key, warehouse, warehouse_lock)
        except Exception as exc:  # noqa: BLE001 - isolated per object, raised below
            return log, exc

    workers = 1 if len(todo) == 1 else load_workers()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="landfall-load") as pool:
        for (partition_key, key), (log, result) in zip(
            todo, pool.map(ingest, [key for _, key in todo]), strict=True
        ):
            log.flush_to(context.log)
            if not isinstance(result, Exception):
                outcomes[partition_key] = result
                continue
            if len(keys) == 1:
                raise result
            context.log.error(f"s3://{bucket}/{key}: {type(result).__name__}: {result}")
            errors[key] = result
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
    for partition_key, outcome in outcomes.items():
        for table_key in zone.table_keys:
            context.add_asset_metadata(
                {
                    **_file_metadata(bucket, outcome),
                    "dagster/row_count": outcome.counts.get(table_key[-1], 0),
                },
                asset_key=dg.AssetKey(table_key),
                partition_key=partition_key,
            )

    quarantined = {o.obj.key: o.reason for o in outcomes.values() if o.reason}
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
                    context.instance, dg.AssetKey(table_key), schemas[table_key[-1]]
                ),
                "landfall/files_in_run": len(keys),
            },
            data_version=dg.DataVersion(data_version) if versions else None,
        )
    if len(keys) == 1:
        file = f"s3://{bucket}/{keys[0]}"
        reason = quarantined.get(keys[0])
        description = reason or "file passed validation and its contract"
        metadata = {"file": file, "reason": reason or ""}
    else:
        description = (
            f"{len(quarantined)} of {len(keys)} files quarantined: "
            + "; ".join(f"{k}: {r}" for k, r in list(quarantined.items())[:20])
            if quarantined
            else f"all {len(keys)} files passed validation and their contract"
        )
        metadata = {"quarantined": dg.MetadataValue.json(quarantined), "files": len(keys)}
    yield dg.AssetCheckResult(
        asset_key=main_key,
        check_name=FILE_CHECK,
        passed=not quarantined,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata=metadata,
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
        yield from ingest_partitions(context, zone, landing, warehouse)

    return _ingest


def build_zone_job(zone: ZoneSpec) -> "UnresolvedAssetJobDefinition":
    return dg.define_asset_job(
        name=f"ingest_{zone.name}_job",
        selection=dg.AssetSelection.assets(*[dg.AssetKey(k) for k in zone.table_keys]),
        description=f"Load one landed object of the {zone.name} zone into {zone.table}.",
    )
