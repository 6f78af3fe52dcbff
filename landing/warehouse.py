"""The warehouse the landing path writes to, behind one small interface with two
implementations: DuckDB (one local file, the embedded default) and Snowflake (production).

Every statement of the landing path (staging tables, contract type checks, delete-by-file +
insert + ledger row, quarantine records, column reads) is written once, in portable SQL, in
`landing.raw_load` and `landing.ledger`, against a *session*: `execute(sql, params)` with `?`
placeholders, and a `dialect`. What differs between the two warehouses sits here, once each:
how names are cased and quoted, how a session is opened, and where Sling and dlt stage a file.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import dagster as dg
import duckdb
from pydantic import Field

from landing import dlt_loader, raw_load, sling_loader
from landing.dialects import DUCKDB, Dialect, Session
from landing.identifiers import quote_literal
from landing.objects import short_hash
from landing.zones import ZoneSpec

_LOCK_WAIT_S = 120.0
STAGE_SCHEMA = "_landfall_stage"


@dataclass
class Staging:
    """The rows of one object (or of a run's objects: a shared stage) staged for the merge,
    and what to clean up after it."""

    tables: list[raw_load.StagedTable]
    timing: dict[str, float] = field(default_factory=dict)
    attach: tuple[str, Path] | None = None  # DuckDB: Sling's scratch file (alias, path)
    # DuckDB: a read_csv the merge session runs into its temporary stage table (files, options)
    read: tuple[str | list[str], dict[str, object]] | None = None
    # DuckDB, one object: the contract's types (column -> type), converted by the read itself,
    # which the stage then is (a view the merge reads once); empty: all text, in a temp table
    read_types: dict[str, str] = field(default_factory=dict)
    drop_schema: str | None = None  # dlt's staging schema
    # a stage shared by a run's objects: what its source column holds for each local copy's
    # path, when not the path itself (Sling's file URL of a link to the copy)
    sources: dict[str, str] = field(default_factory=dict)

    def source_of(self, local_copy: Path) -> str:
        """The value of the shared stage's source column on the rows of this local copy."""
        return self.sources.get(str(local_copy), str(local_copy))

    def as_text(self) -> Staging:
        """The same read staged as text: after `TypedReadFailed`, the contract check then
        names the column, an example and its line."""
        return replace(self, read_types={}, timing={})


class TypedReadFailed(Exception):
    """DuckDB's typed read of a local copy failed in the merge (most often a value that does
    not convert to its contract type); the merge was rolled back. Stage it `as_text()`."""


class LandingWarehouse(Protocol):
    """What the ingestion runtime needs of a warehouse; DuckDBWarehouse and SnowflakeWarehouse."""

    @property
    def dialect(self) -> Dialect: ...

    def connect(self, read_only: bool = False) -> AbstractContextManager[Session]: ...

    def stage_with_sling(
        self, zone: ZoneSpec, local_copy: Path, token: str, log: Callable[[str], None]
    ) -> Staging: ...

    def stage_with_dlt(self, zone: ZoneSpec, local_copy: Path, token: str) -> Staging: ...

    def merge_session(self, staging: Staging) -> AbstractContextManager[Session]: ...

    def stage_batch(
        self, zone: ZoneSpec, local_copies: list[Path], folder: Path, log: Callable[[str], None]
    ) -> Staging | None: ...


def _lines(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8") as fh:
        yield from fh


def _header_line(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.readline(1 << 20)


def _read_csv(
    con: duckdb.DuckDBPyConnection,
    table: str,
    read: tuple[str | list[str], dict[str, object]],
    types: dict[str, str] | None = None,
) -> None:
    """DuckDB's read_csv of `files` into the connection's temporary table `table`, all text, or
    with `types` (column -> contract type) into a temporary view that converts them as it reads.

    In memory, inside the merge session: a 1M-row file reads in 0.3 s there, against 1.5-2 s
    into a scratch database file (whose compressed string columns cost most of it), and the
    merge that follows holds the warehouse's one writer anyway. The view saves reading the
    file twice (into the stage, then into raw through casts): 0.3-0.4 s of 1.3 s per 1M rows."""
    files, options = read
    name = DUCKDB.ident(table, "stage table")
    if types:
        # the header's names as the text stage has them (trimmed, a repeated one renamed)
        described = con.execute(f"DESCRIBE SELECT * FROM {_read_csv_call(files, options)}")
        names = [row[0] for row in described.fetchall()]
        # no sniffing of the values: a sniffed timestampformat read 13-10-2026 as day-month,
        # which the contract's cast refuses; without one, read_csv converts as CAST does
        typed = {k: v for k, v in options.items() if k != "all_varchar"} | {
            "auto_detect": False,
            "columns": {n: types.get(n.lower(), "VARCHAR") for n in names},
        }
        con.execute(f"CREATE TEMP VIEW {name} AS SELECT * FROM {_read_csv_call(files, typed)}")
        return
    settings = ", ".join(f"{k} = ?" for k in options)  # our own option names, never YAML
    con.execute(
        f"CREATE TEMP TABLE {name} AS SELECT * FROM read_csv(?, {settings})",
        [files, *options.values()],
    )


def _read_csv_call(files: str | list[str], options: dict[str, object]) -> str:
    """read_csv(...) with literal arguments, for a view, which binds no parameters (the
    option names are ours, the values quoted)."""
    settings = ", ".join(f"{k} = {_literal(v)}" for k, v in options.items())
    return f"read_csv({_literal(files)}, {settings})"


@contextmanager
def _typed_read_failures(staging: Staging) -> Iterator[None]:
    """A DuckDB error while a typed read is the stage is that read's (the merge rolled back):
    raised as `TypedReadFailed`, so the caller stages the object again as text."""
    try:
        yield
    except duckdb.Error as exc:
        if staging.read_types:
            raise TypedReadFailed(f"{type(exc).__name__}: {exc}") from exc
        raise


def _literal(value: object) -> str:
    """A read_csv option's value as a DuckDB literal: bool, string, list or map of strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quote_literal(value)
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no DuckDB literal for read_csv option value {value!r}")


def dlt_staging(zone: ZoneSpec, local_copy: Path, token: str, destination: object) -> Staging:
    """dlt's run of one object into its own staging schema of `destination`."""
    from landing.dlt_sources.jsonl import records_of  # imports dlt: only in runs that use it

    schema = f"{STAGE_SCHEMA}_{zone.name}_{token}"
    records = records_of(_lines(local_copy))
    result = dlt_loader.run_pipeline(zone, records, schema, destination, token)
    return Staging(result.staged, {"dlt_seconds": round(result.seconds, 3)}, drop_schema=schema)


def dlt_batch_staging(
    warehouse: LandingWarehouse,
    zone: ZoneSpec,
    local_copies: list[Path],
    folder: Path,
    destination: object,
    log: Callable[[str], None],
) -> Staging | None:
    """One dlt run over all validated local copies of a run into one staging schema, each root
    row tagged with its copy's path (child rows reach it through dlt's root key).

    None (each object then stages on its own) when dlt had to split a column into variants
    (`amount__v_text`): in one run the first type it sees wins and another file's values of
    another type go to the variant, where the contract check would not see them."""
    from landing.dlt_sources.jsonl import records_of  # imports dlt: only in runs that use it

    token = short_hash(str(folder))
    schema = f"{STAGE_SCHEMA}_{zone.name}_batch_{token}"
    records = (
        record
        for path in local_copies
        for record in records_of(_lines(path), (raw_load.SOURCE_COLUMN, str(path)))
    )

    def drop() -> None:
        with warehouse.connect() as con:
            con.execute(f"DROP SCHEMA IF EXISTS {warehouse.dialect.ident(schema)} CASCADE")

    try:
        result = dlt_loader.run_pipeline(zone, records, schema, destination, token, shared=True)
    except BaseException:
        drop()  # the per-object stagings that follow leave no half-loaded batch behind
        raise
    staging = Staging(result.staged, {"dlt_seconds": round(result.seconds, 3)}, drop_schema=schema)
    with warehouse.connect() as con:
        variants = [
            f"{t.stage_table}.{c}"
            for t in staging.tables
            for c in raw_load.table_columns(con, t.stage_schema, t.stage_table)
            if "__v_" in c
        ]
    if variants:
        drop()
        log(f"dlt split {variants} by type across the run's files: each object stages alone")
        return None
    log(f"dlt staged {len(local_copies)} objects in one pipeline run")
    return staging


class DuckDBWarehouse(dg.ConfigurableResource):
    """The embedded warehouse: one DuckDB file. DuckDB allows one writing process, so writers
    run in the `warehouse` pool of 1 and connections are opened per unit of work, never held."""

    path: str = Field(description="Path of the DuckDB database file")

    @property
    def dialect(self) -> Dialect:
        return DUCKDB

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # DuckDB's Python client imports pandas and numpy the first time a statement binds a
        # parameter: every fresh run process paid that inside its first staging (1 s on a quiet
        # machine, 15 s of a 200-object run's step on a busy one). Imported on a thread at
        # resource init instead, while the run downloads its objects.
        threading.Thread(target=importlib.import_module, args=("pandas",), daemon=True).start()

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        deadline = time.monotonic() + _LOCK_WAIT_S
        delay = 0.1
        while True:
            try:
                con = duckdb.connect(self.path, read_only=read_only)
                break
            except duckdb.IOException as exc:
                # another process (a reader such as `landfall status`) holds the file lock
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        try:
            yield con
        finally:
            con.close()

    def stage_with_sling(
        self, zone: ZoneSpec, local_copy: Path, token: str, log: Callable[[str], None]
    ) -> Staging:
        """The local copy is already on this machine's disk and the target is DuckDB, so DuckDB's
        own `read_csv` stages it, in the merge session (`_read_csv`), whenever it reproduces
        the zone's replication options exactly (10x Sling's rows/s on a big file, no process
        start per small file). Otherwise Sling runs the replication into a scratch DuckDB file
        beside the local copy, outside the warehouse's one writer, so several objects stage at
        once and only the merge waits. In production Sling always loads Snowflake."""
        alias = f"landfall_stage_{token}"
        options = sling_loader.duckdb_csv_options(zone)
        if options is None:
            stage = sling_loader.stage_object(zone, local_copy, local_copy.parent, log)
            return Staging(
                [raw_load.StagedTable(zone.table_name, "main", "stage", alias)],
                {"sling_seconds": round(stage.seconds, 3), "sling_parts": stage.parts},
                attach=(alias, stage.path),
            )
        log(f"staging {local_copy.name} with DuckDB read_csv ({options}), typed by the contract")
        return Staging(
            [raw_load.StagedTable(zone.table_name, "main", alias, "temp")],
            read=(str(local_copy), options),
            read_types={column: type_name.upper() for column, type_name in zone.columns.items()},
        )

    def stage_batch(
        self, zone: ZoneSpec, local_copies: list[Path], folder: Path, log: Callable[[str], None]
    ) -> Staging | None:
        """All validated local copies of a run staged by one loader invocation: dlt zones by
        one pipeline run (`dlt_batch_staging`); CSV by one DuckDB read_csv in the merge
        session (`_read_csv`), each row tagged with its copy's path. None when DuckDB cannot
        mirror the zone's replication (then each object stages on its own)."""
        if zone.loader == "dlt":
            import dlt

            destination = dlt.destinations.duckdb(self.path)
            return dlt_batch_staging(self, zone, local_copies, folder, destination, log)
        options = sling_loader.duckdb_csv_options(zone)
        if options is None:
            return None
        options = {**options, "filename": raw_load.SOURCE_COLUMN}
        # union_by_name sniffs every file (200 small files: 5 s against 1 s without); files
        # whose header lines are byte-identical have the same columns, so it is needed only
        # when they differ (without it DuckDB drops a column the first file lacks)
        if len({_header_line(p) for p in local_copies}) > 1:
            options["union_by_name"] = True
        log(f"staging {len(local_copies)} objects with one DuckDB read_csv")
        return Staging(
            [raw_load.StagedTable(zone.table_name, "main", "landfall_batch_stage", "temp")],
            read=([str(p) for p in local_copies], options),
        )

    def stage_with_dlt(self, zone: ZoneSpec, local_copy: Path, token: str) -> Staging:
        import dlt

        return dlt_staging(zone, local_copy, token, dlt.destinations.duckdb(self.path))

    @contextmanager
    def merge_session(self, staging: Staging) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection with the stage in place: Sling's scratch file attached, or DuckDB's
        read_csv as a temporary table (text) or view (typed by the contract). A typed read that
        fails in the merge is raised as `TypedReadFailed`, after the merge rolled back."""
        with self.connect() as con:
            # nothing reads raw rows in the order a file held them (dbt ranks a key's rows by
            # load time and file), and without that order DuckDB writes an insert's row groups
            # as it goes, in parallel, instead of leaving them to the checkpoint on close:
            # 1.1 -> 0.85 s per 1M rows
            con.execute("SET SESSION preserve_insertion_order = false")
            if staging.attach:
                alias = DUCKDB.ident(staging.attach[0], "stage database")
                con.execute(
                    f"ATTACH {quote_literal(str(staging.attach[1]))} AS {alias} (READ_ONLY)"
                )
            if staging.read:
                started = time.monotonic()
                with _typed_read_failures(staging):
                    _read_csv(con, staging.tables[0].stage_table, staging.read, staging.read_types)
                staging.timing["duckdb_read_seconds"] = round(time.monotonic() - started, 3)
            try:
                with _typed_read_failures(staging):
                    yield con
            finally:
                raw_load.drop_staged(con, staging.tables)
                if staging.read:
                    kind = "VIEW" if staging.read_types else "TABLE"
                    con.execute(f"DROP {kind} IF EXISTS {staging.tables[0].relation(DUCKDB)}")
                if staging.attach:
                    con.execute(f"DETACH {alias}")
                if staging.drop_schema:
                    con.execute(
                        f"DROP SCHEMA IF EXISTS {DUCKDB.ident(staging.drop_schema)} CASCADE"
                    )
