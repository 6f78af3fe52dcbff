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
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import settings
from landing import ledger, raw_load
from landing.content import ContentError, PlainContent
from landing.objects import LandedObject, clean_etag, short_hash
from landing.quarantine import quarantine_object
from landing.validation import BadFileError, HeaderRenamer, check_content, check_object
from landing.warehouse import LandingWarehouse, Staging, TypedReadFailed
from landing.zones import ZoneSpec


def _landed(zone: ZoneSpec, key: str, response: dict[str, Any]) -> LandedObject:
    return LandedObject(
        zone=zone.name,
        key=key,
        etag=clean_etag(response["ETag"]),
        size=int(response["ContentLength"]),
        last_modified=response["LastModified"],
    )


def _missing(client: Any, exc: Exception) -> bool:
    return isinstance(exc, client.exceptions.ClientError) and exc.response.get("Error", {}).get(
        "Code"
    ) in ("404", "NoSuchKey", "NotFound")


def head_object(client: Any, bucket: str, zone: ZoneSpec, key: str) -> LandedObject | None:
    try:
        return _landed(zone, key, client.head_object(Bucket=bucket, Key=key))
    except client.exceptions.ClientError as exc:
        if _missing(client, exc):
            return None
        raise


def _open_object(
    client: Any, bucket: str, zone: ZoneSpec, key: str
) -> tuple[LandedObject, Any] | None:
    """The key's current version and its unread body, from one GET (its ETag names the bytes
    the body holds, so no HEAD is needed first); None if the key is gone."""
    try:
        response = client.get_object(Bucket=bucket, Key=key)
    except client.exceptions.ClientError as exc:
        if _missing(client, exc):
            return None
        raise
    return _landed(zone, key, response), response["Body"]


def _download_checked(zone: ZoneSpec, body: Any, folder: Path) -> tuple[Path, int, PlainContent]:
    """Stream one version's body to a local file while validating it.

    The loaders read that copy: the bytes loaded are the bytes validated (a header the zone
    maps under `source_columns` written in warehouse names), even if the key is overwritten
    meanwhile, and the object is downloaded once. The copy is plain: compression
    (detected by content) undone and a UTF-8 byte-order mark dropped on the way.
    """
    path = folder / f"object.{zone.format}"
    plain = PlainContent(
        body.iter_chunks(chunk_size=1 << 20),
        text=zone.format != "parquet",
        max_bytes=zone.max_file_bytes,
    )
    renamer = HeaderRenamer(zone)  # the copy's header in warehouse names (source_columns)
    with path.open("wb") as out:

        def tee() -> Iterator[bytes]:
            for chunk in plain:
                out.write(renamer.feed(chunk))
                yield chunk
            out.write(renamer.close())

        try:
            records = check_content(zone, tee())
        except BadFileError as exc:
            if plain.compression and not isinstance(exc, ContentError):
                raise BadFileError(
                    f"{exc} (in its {plain.compression}-decompressed content)"
                ) from None
            raise
    return path, records, plain


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
    warehouse: LandingWarehouse,
    warehouse_lock: threading.Lock,
    records: int,
) -> tuple[dict[str, int], dict[str, float]]:
    """Load the local copy into staging, then merge it into raw with its ledger row.

    Sling stages outside the warehouse lock (several objects at once); dlt and every merge
    run under `warehouse_lock`: the embedded warehouse has one writer."""
    token = short_hash(obj.run_key)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    with contextlib.ExitStack() as holding:
        if zone.loader == "sling":
            staging = warehouse.stage_with_sling(zone, local_copy, token, log.debug)
            holding.enter_context(warehouse_lock)
        else:
            holding.enter_context(warehouse_lock)
            staging = warehouse.stage_with_dlt(zone, local_copy, token)
        try:
            counts = _merge(zone, staging, obj, loaded_at, records, local_copy, warehouse)
        except TypedReadFailed as exc:
            log.debug(f"{local_copy.name}: typed read failed ({exc}); staging it as text")
            staging = staging.as_text()
            counts = _merge(zone, staging, obj, loaded_at, records, local_copy, warehouse)
    return counts, staging.timing


def _merge(
    zone: ZoneSpec,
    staging: Staging,
    obj: LandedObject,
    loaded_at: datetime,
    records: int,
    local_copy: Path,
    warehouse: LandingWarehouse,
) -> dict[str, int]:
    """Merge one object's stage; its time (leaving the session included) goes to its timing."""
    with warehouse.merge_session(staging) as con:
        started = time.monotonic()
        counts = raw_load.merge_staged(
            con, zone, staging.tables, obj, loaded_at, records, local_copy
        )
    staging.timing["merge_seconds"] = round(time.monotonic() - started, 3)
    return counts


@dataclass
class FileOutcome:
    """What happened to one landed object in a run."""

    obj: LandedObject
    reason: str | None = None  # set when quarantined
    counts: dict[str, int] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    compression: str | None = None  # what was decompressed on download (gzip, …)


@dataclass
class _Fetched:
    """A validated local copy of one object version, ready to stage."""

    obj: LandedObject
    local_copy: Path
    records: int
    plain: PlainContent


def _fetch(
    log: FileLog, zone: ZoneSpec, client: Any, bucket: str, key: str, folder: Path
) -> _Fetched | FileOutcome:
    """The object's current version downloaded and validated into `folder`, or the outcome
    that ends it here (deleted, or a bad file with its reason)."""
    opened = _open_object(client, bucket, zone, key)
    if opened is None:
        now = datetime.now(UTC).replace(tzinfo=None)
        return FileOutcome(
            LandedObject(zone.name, key, "deleted", 0, now),
            reason="object was deleted from the landing zone before it could be loaded",
        )
    obj, body = opened
    try:
        check_object(zone, obj.key, obj.size)  # before reading a byte of a refused object
        folder.mkdir(parents=True)
        local_copy, records, plain = _download_checked(zone, body, folder)
    except BadFileError as exc:
        return FileOutcome(obj, reason=str(exc))
    finally:
        body.close()
    if plain.compression:
        log.info(f"s3://{bucket}/{key}: {plain.compression}-compressed, decompressed")
    if plain.bom_stripped:
        log.debug(f"s3://{bucket}/{key}: UTF-8 byte-order mark dropped")
    return _Fetched(obj, local_copy, records, plain)


def _record_empty(
    zone: ZoneSpec,
    fetched: _Fetched,
    warehouse: LandingWarehouse,
    warehouse_lock: threading.Lock,
) -> FileOutcome:
    """A valid empty export (a header, no records): no loader runs, 0 rows = 0 records."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with warehouse_lock, warehouse.connect() as con:
        raw_load.record_empty_export(con, zone, fetched.obj, now)
    return FileOutcome(
        fetched.obj,
        counts={t: 0 for t in [zone.table_name, *zone.child_tables]},
        compression=fetched.plain.compression,
    )


def _finish(
    log: FileLog,
    zone: ZoneSpec,
    client: Any,
    bucket: str,
    outcome: FileOutcome,
    warehouse: LandingWarehouse,
    warehouse_lock: threading.Lock,
) -> FileOutcome:
    """Log a loaded object; quarantine a bad one (S3 copy with its reason + ledger row)."""
    key = outcome.obj.key
    if outcome.reason is None:
        log.info(f"loaded s3://{bucket}/{key}: {outcome.counts.get(zone.table_name)} rows")
        return outcome
    now = datetime.now(UTC).replace(tzinfo=None)
    log.warning(f"quarantined s3://{bucket}/{key}: {outcome.reason}")
    if outcome.obj.etag != "deleted":
        quarantine_object(client, bucket, zone, outcome.obj, outcome.reason, now)
    with warehouse_lock, warehouse.connect() as con:
        raw_load.record_quarantine(con, zone, outcome.obj, outcome.reason, now)
    return outcome


def _load_alone(
    log: FileLog,
    zone: ZoneSpec,
    fetched: _Fetched,
    warehouse: LandingWarehouse,
    warehouse_lock: threading.Lock,
) -> FileOutcome:
    """Stage and merge one object on its own (dlt zones, Sling-only replications, a batch
    that failed); a contract breach becomes its quarantine reason."""
    outcome = FileOutcome(fetched.obj, compression=fetched.plain.compression)
    try:
        outcome.counts, outcome.timing = _load(
            log,
            zone,
            fetched.obj,
            fetched.local_copy,
            warehouse,
            warehouse_lock,
            fetched.records,
        )
    except BadFileError as exc:
        outcome.reason = str(exc)
    return outcome


def _merge_from_batch(
    con: Any, zone: ZoneSpec, staging: Staging, fetched: _Fetched, loaded_at: datetime
) -> FileOutcome:
    """One object's rows out of the run's shared stage: its own transaction and ledger row."""
    outcome = FileOutcome(fetched.obj, compression=fetched.plain.compression)
    source = staging.source_of(fetched.local_copy)
    tables = [replace(t, source_file=source) for t in staging.tables]
    started = time.monotonic()
    try:
        outcome.counts = raw_load.merge_staged(
            con, zone, tables, fetched.obj, loaded_at, fetched.records, fetched.local_copy
        )
    except BadFileError as exc:
        outcome.reason = str(exc)
    outcome.timing = {**staging.timing, "merge_seconds": round(time.monotonic() - started, 3)}
    return outcome


def load_workers() -> int:
    """Objects staged at once in one run (`LANDFALL_LOAD_WORKERS`). A Sling run is mostly
    process start-up and waiting on its DuckDB CLI, so more than one per core pays: 20 small
    files staged 3 at a time took 0.5 s each against 1.3 s one at a time on 2 cores."""
    return settings.load_workers() or max(2, min(8, len(os.sched_getaffinity(0)) + 1))


def recorded_outcomes(
    zone: ZoneSpec, client: Any, bucket: str, keys: list[str], warehouse: LandingWarehouse
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
    zone: ZoneSpec, client: Any, bucket: str, keys: list[str], warehouse: LandingWarehouse
) -> Iterator[tuple[str, FileLog, FileOutcome | Exception]]:
    """Ingest the objects of one run, each isolated: yields (key, its log, its outcome or the
    unexpected error it raised) in the order of `keys`, on the caller's thread.

    Objects are downloaded and validated concurrently; the valid ones are then staged by one
    loader invocation where the warehouse offers it (`stage_batch`) and merged one by one
    (delete + insert + ledger row, one transaction each) in one warehouse session. If the batch
    stage fails, each object is staged on its own so one bad object cannot fail the others.
    """
    warehouse_lock = threading.Lock()
    logs = {key: FileLog() for key in keys}
    results: dict[str, FileOutcome | Exception] = {}
    workers = 1 if len(keys) == 1 else load_workers()
    with (
        tempfile.TemporaryDirectory(prefix="landfall-run-") as run_dir,
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="landfall-load") as pool,
    ):

        def fetch(item: tuple[int, str]) -> _Fetched | FileOutcome | Exception:
            index, key = item
            try:
                return _fetch(
                    logs[key], zone, client, bucket, key, Path(run_dir) / f"object-{index}"
                )
            except Exception as exc:  # noqa: BLE001 - isolated per object, reported to the caller
                return exc

        fetched: list[_Fetched] = []
        for key, result in zip(keys, pool.map(fetch, enumerate(keys)), strict=True):
            if isinstance(result, _Fetched) and result.records == 0:
                try:
                    results[key] = _record_empty(zone, result, warehouse, warehouse_lock)
                except Exception as exc:  # noqa: BLE001 - isolated per object
                    results[key] = exc
            elif isinstance(result, _Fetched):
                fetched.append(result)
            else:
                results[key] = result

        staging = _stage_batch(zone, warehouse, fetched, Path(run_dir), logs)
        if staging is not None:
            try:
                with warehouse_lock, warehouse.merge_session(staging) as con:
                    results.update(_merge_shared_stage(con, zone, staging, fetched, logs))
            except Exception as exc:  # noqa: BLE001 - the loads below isolate the cause
                # the session's own read of the stage (DuckDB) or its cleanup failed
                _log_batch_failure(fetched, exc, logs)

        def load(item: _Fetched) -> FileOutcome | Exception:
            try:
                return _load_alone(logs[item.obj.key], zone, item, warehouse, warehouse_lock)
            except Exception as exc:  # noqa: BLE001 - isolated per object
                return exc

        alone = [item for item in fetched if item.obj.key not in results]
        results.update(
            (item.obj.key, result)
            for item, result in zip(alone, pool.map(load, alone), strict=True)
        )

        def finish(key: str) -> FileOutcome | Exception:
            result = results[key]
            if isinstance(result, Exception):
                return result
            try:
                return _finish(logs[key], zone, client, bucket, result, warehouse, warehouse_lock)
            except Exception as exc:  # noqa: BLE001 - isolated per object
                return exc

        for key, result in zip(keys, pool.map(finish, keys), strict=True):
            yield key, logs[key], result


def _merge_shared_stage(
    con: Any,
    zone: ZoneSpec,
    staging: Staging,
    fetched: list[_Fetched],
    logs: dict[str, FileLog],
) -> dict[str, FileOutcome | Exception]:
    """All objects of the shared stage merged set-wise in one transaction; if that fails (or
    the stage has child tables), each on its own (its own transaction), so one object's failure
    stays its own."""
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    started = time.monotonic()
    items = [raw_load.BatchItem(f.obj, staging.source_of(f.local_copy), f.records) for f in fetched]
    # a shared dlt stage with child tables merges per object (its child rows through its root
    # rows); one table merges set-wise
    if len(staging.tables) == 1:
        try:
            loaded, refused = raw_load.merge_batch(con, zone, staging.tables[0], items, loaded_at)
        except Exception as exc:  # noqa: BLE001 - the per-object merges below isolate the cause
            for item in fetched:
                logs[item.obj.key].warning(
                    f"merging the run's {len(fetched)} objects together failed "
                    f"({type(exc).__name__}: {exc}); merging each on its own"
                )
        else:
            timing = {
                **staging.timing,
                "merge_seconds": round(time.monotonic() - started, 3),
                "batch_objects": len(fetched),
            }
            return {
                f.obj.key: FileOutcome(
                    f.obj,
                    reason=refused.get(f.obj.key),
                    counts={zone.table_name: loaded[f.obj.key]} if f.obj.key in loaded else {},
                    timing=timing,
                    compression=f.plain.compression,
                )
                for f in fetched
            }
    outcomes: dict[str, FileOutcome | Exception] = {}
    for item in fetched:
        try:
            outcomes[item.obj.key] = _merge_from_batch(con, zone, staging, item, loaded_at)
        except Exception as exc:  # noqa: BLE001 - isolated per object
            outcomes[item.obj.key] = exc
    return outcomes


def _stage_batch(
    zone: ZoneSpec,
    warehouse: LandingWarehouse,
    fetched: list[_Fetched],
    run_dir: Path,
    logs: dict[str, FileLog],
) -> Staging | None:
    """The run's shared stage, or None: one object, a warehouse or zone without batches, or a
    batch that failed (logged on each object; they then stage one by one)."""
    if len(fetched) < 2:
        return None
    try:
        return warehouse.stage_batch(
            zone, [f.local_copy for f in fetched], run_dir, logs[fetched[0].obj.key].debug
        )
    except Exception as exc:  # noqa: BLE001 - the fallback isolates the object that caused it
        _log_batch_failure(fetched, exc, logs)
        return None


def _log_batch_failure(fetched: list[_Fetched], exc: Exception, logs: dict[str, FileLog]) -> None:
    for item in fetched:
        logs[item.obj.key].warning(
            f"batch staging of {len(fetched)} objects failed ({type(exc).__name__}: {exc}); "
            "staging each object on its own"
        )
