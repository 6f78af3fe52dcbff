"""Ingestion of landed objects: download each version once while validating it, load it with the
zone's loader (Sling or dlt) into staging, merge it into its raw tables with its ledger row, or
quarantine it with the reason. Orchestration wires this into assets; nothing here knows Dagster.
"""

from __future__ import annotations

import contextlib
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

from common import settings
from landing import dlt_loader, ledger, raw_load, sling_loader
from landing.identifiers import quote_identifier, quote_literal
from landing.objects import LandedObject, clean_etag, short_hash
from landing.quarantine import quarantine_object
from landing.validation import BadFileError, check_content, check_object
from landing.warehouse import DuckDBWarehouse
from landing.zones import ZoneSpec

STAGE_SCHEMA = "_landfall_stage"


def head_object(client: Any, bucket: str, zone: ZoneSpec, key: str) -> LandedObject | None:
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
    client: Any,
    bucket: str,
    key: str,
    warehouse: DuckDBWarehouse,
    warehouse_lock: threading.Lock,
) -> FileOutcome:
    """Validate, load and merge one object, or quarantine it; either way one ledger row.
    Thread-safe: every warehouse write happens under `warehouse_lock`."""
    obj = head_object(client, bucket, zone, key)
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


def load_workers() -> int:
    """Objects staged at once in one run (`LANDFALL_LOAD_WORKERS`). A Sling run is mostly
    process start-up and waiting on its DuckDB CLI, so more than one per core pays: 20 small
    files staged 3 at a time took 0.5 s each against 1.3 s one at a time on 2 cores."""
    return settings.load_workers() or max(2, min(8, len(os.sched_getaffinity(0)) + 1))


def recorded_outcomes(
    zone: ZoneSpec, client: Any, bucket: str, keys: list[str], warehouse: DuckDBWarehouse
) -> dict[str, FileOutcome]:
    """The objects whose current version the ledger already records, with that outcome: what an
    earlier attempt of this run (a step retry, a re-execution) finished."""
    with warehouse.connect(read_only=True) as con:
        recorded = ledger.current_entries(con, zone.name, keys)
    done: dict[str, FileOutcome] = {}
    for key in {k for k, _ in recorded}:
        obj = head_object(client, bucket, zone, key)
        entry = recorded.get((key, obj.etag)) if obj else None
        if obj is not None and entry is not None:
            done[key] = FileOutcome(
                obj,
                reason=entry.reason if entry.state == ledger.QUARANTINED else None,
                counts={zone.table_name: entry.rows},
            )
    return done


def ingest_objects(
    zone: ZoneSpec, client: Any, bucket: str, keys: list[str], warehouse: DuckDBWarehouse
) -> Iterator[tuple[str, FileLog, FileOutcome | Exception]]:
    """Ingest objects concurrently, each isolated: yields (key, its log, its outcome or the
    unexpected error it raised) in the order of `keys`, on the caller's thread."""
    warehouse_lock = threading.Lock()

    def ingest(key: str) -> tuple[FileLog, FileOutcome | Exception]:
        log = FileLog()
        try:
            return log, ingest_object(log, zone, client, bucket, key, warehouse, warehouse_lock)
        except Exception as exc:  # noqa: BLE001 - isolated per object, reported to the caller
            return log, exc

    workers = 1 if len(keys) == 1 else load_workers()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="landfall-load") as pool:
        for key, (log, result) in zip(keys, pool.map(ingest, keys), strict=True):
            yield key, log, result
