"""Run a zone's Sling replication (landing/sling/<zone>.yaml) for one landed object.

Sling writes into a scratch DuckDB file beside the object's local copy, not into the warehouse:
the warehouse allows one writer, and only the short merge needs it. A large CSV is cut at record
boundaries into one part per core and the parts run as concurrent Sling processes, because one
Sling process parses rows on one core.
"""

from __future__ import annotations

import contextlib
import functools
import json
import mmap
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import yaml

from landing.identifiers import quote_literal
from landing.zones import ZoneSpec

OBJECT_URL, STAGE_TABLE = "{object_url}", "{stage_table}"
_INSERTED = re.compile(r"inserted (\d+) rows")


# Below this size one Sling process is faster than cutting the file and starting several.
PARALLEL_MIN_BYTES = 16 * 1024 * 1024
SCRATCH_TABLE = "main.stage"
# A stuck Sling run is stopped and retried rather than holding its run forever: the limit allows
# two minutes of start-up plus 50 kB/s, far below what Sling does even on a loaded machine.
SLING_TIMEOUT_BASE_SECONDS = 120
SLING_MIN_BYTES_PER_SECOND = 50_000


def _timeout(local_copy: Path, size: int | None = None) -> float:
    size = local_copy.stat().st_size if size is None else size
    return SLING_TIMEOUT_BASE_SECONDS + size / SLING_MIN_BYTES_PER_SECOND


class SlingRunError(RuntimeError):
    """Sling failed after the file passed validation: treated as transient and retried."""


class SlingStuckError(SlingRunError):
    """A Sling process outlived its timeout and was stopped."""


@dataclass(frozen=True)
class ScratchStage:
    """Sling's output for one object: table `main.stage` in the DuckDB file `path`."""

    path: Path
    rows: int
    seconds: float
    parts: int


def render_replication(zone: ZoneSpec, object_url: str, stage_table: str) -> dict[str, Any]:
    """The zone's replication with its one templated stream bound to this object."""
    path = zone.sling_replication_path()
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    streams = config.get("streams") or {}
    if list(streams) != [OBJECT_URL] or (streams[OBJECT_URL] or {}).get("object") != STAGE_TABLE:
        raise ValueError(
            f"{path}: field 'streams': expected exactly one stream named {OBJECT_URL!r} with "
            f"object {STAGE_TABLE!r}"
        )
    stream = {**streams[OBJECT_URL], "object": stage_table}
    if zone.null_value is not None:  # the zone file's `null_values`, Sling's null_if
        stream["source_options"] = {
            **(stream.get("source_options") or {}),
            "null_if": zone.null_value,
        }
    config["streams"] = {object_url: stream}
    return config


# Sling source options DuckDB's read_csv reproduces exactly, and how. A replication using any
# other option (or a column mapping other than all-text) stays on Sling, where it means what
# Sling says it means.
# `empty_as_null` and `null_if` together become read_csv's nullstr list: a nullstr of 'NA'
# alone would make an empty field '' instead of NULL (read_csv's default nullstr is '').
_DUCKDB_CSV_OPTIONS = {
    "format": lambda v: {} if v == "csv" else None,
    "header": lambda v: {"header": bool(v)},
    "empty_as_null": lambda v: {} if v else None,  # read_csv: an empty field is NULL
    "delimiter": lambda v: {"delim": str(v)},
    "null_if": lambda v: {},  # with empty_as_null, below
}


def duckdb_csv_options(zone: ZoneSpec) -> dict[str, Any] | None:
    """read_csv options equal to the zone's replication, or None when DuckDB cannot mirror it."""
    if zone.format != "csv":
        return None
    stream = render_replication(zone, OBJECT_URL, STAGE_TABLE)["streams"][OBJECT_URL]
    if stream.get("columns") != {"*": "string"} or set(stream) - {
        "object",
        "source_options",
        "columns",
        "target_options",
    }:
        return None
    # quoting as Sling and the validator read it (RFC 4180), never sniffed: a sniffer that sees
    # no quote in the first file would split a quoted "39,1mm" in the next one
    options: dict[str, Any] = {"all_varchar": True, "header": True, "quote": '"', "escape": '"'}
    source_options = stream.get("source_options") or {}
    for name, value in source_options.items():
        mirror = _DUCKDB_CSV_OPTIONS.get(name)
        translated = mirror(value) if mirror else None
        if translated is None:
            return None
        options |= translated
    if "null_if" in source_options:
        if not source_options.get("empty_as_null"):
            return None  # Sling's meaning of an empty field then: left to Sling
        options["nullstr"] = [str(source_options["null_if"]), ""]
    return options


def _sling_env(
    connections: Mapping[str, Mapping[str, Any] | str], temp_dir: Path, url_column: bool = False
) -> dict[str, str]:
    return {
        # a stream over a folder: each row carries its file's URL in column _sling_stream_url
        **({"SLING_STREAM_URL_COLUMN": "true"} if url_column else {}),
        **os.environ,
        # a connection is a URL string or a mapping of fields
        **{
            name: conn if isinstance(conn, str) else json.dumps(conn)
            for name, conn in connections.items()
        },
        "SLING_LOADED_AT_COLUMN": "false",  # we write our own provenance columns
        "SLING_DISABLE_TELEMETRY": "true",
        # Sling's DuckDB target writes its CSV batches to $TMPDIR/duckdb/import/<table>_sling_
        # duckdb_tmp/<start time in ms>: two processes staging the same table in the same
        # millisecond shared a folder and loaded each other's rows. One temp dir per process.
        "TMPDIR": str(temp_dir),
    }


def _start(
    zone: ZoneSpec,
    object_url: str,
    stage_table: str,
    connections: Mapping[str, Mapping[str, Any] | str],
    folder: Path,
    stream_overrides: Mapping[str, Any] | None = None,
    url_column: bool = False,
) -> subprocess.Popen:
    from sling import SLING_BIN

    replication = render_replication(zone, object_url, stage_table)
    if stream_overrides:
        stream = replication["streams"][object_url]
        for key, value in stream_overrides.items():
            stream[key] = {**stream.get(key, {}), **value} if isinstance(value, dict) else value
    path = folder / "replication.yaml"
    path.write_text(yaml.safe_dump(replication), encoding="utf-8")
    temp_dir = folder / "tmp"
    temp_dir.mkdir(exist_ok=True)
    # Output to a file, not a pipe: a child Sling leaves behind (its DuckDB CLI) cannot hold a
    # pipe open and keep us waiting; its own session lets a timeout kill the whole group.
    with (folder / "sling.log").open("wb") as out:
        proc = subprocess.Popen(
            [SLING_BIN, "run", "-r", str(path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_sling_env(connections, temp_dir, url_column),
            start_new_session=True,
        )
    return proc


def _kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _finish(
    proc: subprocess.Popen,
    folder: Path,
    object_url: str,
    log: Callable[[str], None],
    timeout: float,
) -> int:
    """Wait for one Sling process; its inserted row count, or SlingRunError (retried)."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise SlingStuckError(
            f"sling took over {timeout:.0f} s for {object_url}; stopped"
        ) from None
    output = (folder / "sling.log").read_text(encoding="utf-8", errors="replace")
    output = re.sub(r"\x1b\[[0-9;]*m", "", output)
    for line in output.splitlines():
        if line.strip():
            log(f"sling: {line.strip()}")
    if proc.returncode != 0:
        tail = " | ".join(line.strip() for line in output.splitlines()[-6:] if line.strip())
        raise SlingRunError(f"sling exited {proc.returncode} for {object_url}: {tail}")
    inserted = _INSERTED.findall(output)
    return int(inserted[-1]) if inserted else 0


def split_csv(path: Path, parts: int, folder: Path) -> list[Path]:
    """Cut a CSV at record boundaries into at most `parts` files, each with the header.

    A newline ends a record only outside quotes; quotes inside fields are doubled (RFC 4180),
    so an even count of quote characters before a newline means it is outside.
    """
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        header_end = data.find(b"\n") + 1
        if header_end <= 0 or parts < 2:
            return [path]
        header, size = data[:header_end], len(data)
        cuts, quotes, counted = [header_end], 0, header_end
        for i in range(1, parts):
            pos = data.find(b"\n", max(size * i // parts, cuts[-1]))
            while pos != -1:
                quotes += data[counted:pos].count(b'"')
                counted = pos
                if quotes % 2 == 0:
                    break
                pos = data.find(b"\n", pos + 1)
            if pos == -1 or pos + 1 >= size:
                break
            cuts.append(pos + 1)
        cuts.append(size)
        pieces = []
        for i, (start, end) in enumerate(zip(cuts, cuts[1:], strict=False)):
            piece = folder / f"part-{i}.csv"
            with piece.open("wb") as out:
                out.write(header)
                out.write(data[start:end])
            pieces.append(piece)
        return pieces


def parallel_parts(zone: ZoneSpec, size: int) -> int:
    if zone.format != "csv" or size < PARALLEL_MIN_BYTES:
        return 1
    return max(1, min(len(os.sched_getaffinity(0)), size // PARALLEL_MIN_BYTES))


def _finish_or_again(
    proc: subprocess.Popen,
    work: Path,
    object_url: str,
    log: Callable[[str], None],
    timeout: Callable[[], float],
    start: Callable[[Path], subprocess.Popen],
) -> int:
    """`_finish` one Sling process; if it outlives its timeout, stop it and run the same
    replication once more in a fresh process (`start(its work folder)`) before the error
    reaches the step's own retry of every object.

    Seen rarely with many Sling processes starting at once: one stops before writing its first
    batch (at "writing to target database"), and a fresh process of the same replication loads.
    The replication is full-refresh, so the second run replaces whatever the first left."""
    try:
        return _finish(proc, work, object_url, log, timeout())
    except SlingStuckError:
        log(f"sling made no progress on {object_url}; starting it again")
    again_work = work.with_name(f"{work.name}-again")
    again_work.mkdir()
    again = start(again_work)
    try:
        return _finish(again, again_work, object_url, log, timeout())
    finally:
        if again.poll() is None:
            _kill(again)


def stage_into_table(
    zone: ZoneSpec,
    local_copy: Path,
    folder: Path,
    connection: Mapping[str, Any] | str,
    stage_table: str,
    stream_overrides: Mapping[str, Any],
    log: Callable[[str], None] = print,
) -> int:
    """Run the zone's replication for a validated local copy into `stage_table` of the
    `connection` (the warehouse itself, e.g. Snowflake); the inserted row count.

    `local_copy` may be a folder of copies: one stream reads them all and tags each row with
    its file's URL (column `_sling_stream_url`)."""
    work = folder / "sling-0"
    work.mkdir()
    batch = local_copy.is_dir()
    url = local_copy.as_uri() + "/" if batch else local_copy.as_uri()
    size = sum(p.stat().st_size for p in local_copy.iterdir()) if batch else None

    def start(work: Path) -> subprocess.Popen:
        connections = {"WAREHOUSE": connection}
        return _start(zone, url, stage_table, connections, work, stream_overrides, batch)

    proc = start(work)
    try:
        return _finish_or_again(proc, work, url, log, lambda: _timeout(local_copy, size), start)
    finally:
        if proc.poll() is None:
            _kill(proc)


def _scratch_connection(scratch: Path) -> dict[str, dict[str, str]]:
    return {"WAREHOUSE": {"type": "duckdb", "instance": str(scratch), "copy_method": "csv_files"}}


def stage_object(
    zone: ZoneSpec, local_copy: Path, folder: Path, log: Callable[[str], None] = print
) -> ScratchStage:
    """Run the zone's replication for a validated local copy into a scratch DuckDB file."""
    started = time.monotonic()
    parts = split_csv(local_copy, parallel_parts(zone, local_copy.stat().st_size), folder)
    scratches = [folder / f"stage-{i}.duckdb" for i in range(len(parts))]
    starts = [
        functools.partial(_start, zone, part.as_uri(), SCRATCH_TABLE, _scratch_connection(scratch))
        for part, scratch in zip(parts, scratches, strict=True)
    ]
    running = []
    for i, start in enumerate(starts):
        work = folder / f"sling-{i}"
        work.mkdir()
        running.append(start(work))
    rows = 0
    try:
        for i, proc in enumerate(running):
            rows += _finish_or_again(
                proc,
                folder / f"sling-{i}",
                parts[i].as_uri(),
                log,
                lambda: _timeout(local_copy),
                starts[i],
            )
    finally:
        for proc in running:  # one part failed: do not leave the others running
            if proc.poll() is None:
                _kill(proc)
    target = scratches[0]
    if len(scratches) > 1:
        con = duckdb.connect(str(target))
        try:
            for i, scratch in enumerate(scratches[1:], start=1):
                con.execute(f"ATTACH {quote_literal(str(scratch))} AS part_{i} (READ_ONLY)")
                con.execute(
                    f"INSERT INTO {SCRATCH_TABLE} BY NAME SELECT * FROM part_{i}.{SCRATCH_TABLE}"
                )
        finally:
            con.close()
    return ScratchStage(target, rows, time.monotonic() - started, len(parts))
