"""Merge a staged file into its raw table: contract-typed, delete-by-file then insert, one
transaction together with the ledger row. Re-loading a file replaces its rows, never doubles them.

Portable SQL over a warehouse session (`landing.warehouse`): the same statements run on DuckDB
and Snowflake. On Snowflake table DDL runs before the transaction, because it commits DDL
implicitly; DuckDB runs it inside.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from common.chunks import chunks
from landing import ledger
from landing.dialects import Dialect, Session, dialect_of
from landing.objects import LandedObject
from landing.validation import BadFileError, first_line_with
from landing.zones import ZoneSpec

SOURCE_COLUMN = "_landfall_source"  # the local copy a row of a shared stage came from
ROW_ID, ROOT_KEY = "_dlt_id", "_dlt_root_id"  # dlt's row id, and its root row's on child rows
PROVENANCE_COLUMNS = {
    "_landfall_file": "VARCHAR",
    "_landfall_etag": "VARCHAR",
    "_landfall_loaded_at": "TIMESTAMP",
}
_WAREHOUSE_TYPE = re.compile(r"^[A-Z][A-Z0-9_ ]*(\(\d+(,\s*\d+)?\))?$")


@dataclass(frozen=True)
class StagedTable:
    raw_table: str  # name in the zone's raw schema
    stage_schema: str
    stage_table: str
    # A database ATTACHed to the warehouse connection (Sling's scratch file); None: the warehouse.
    stage_catalog: str | None = None
    # A stage shared by the objects of a run: this object's rows are those whose SOURCE_COLUMN
    # holds this value (its local copy's path); None: every row of the stage is this object's.
    source_file: str | None = None
    # A child table of a shared dlt stage: the stage table (same schema) of its root rows. Its
    # rows carry no source; an object's are those whose ROOT_KEY is one of its root rows' ids.
    root_table: str | None = None

    def relation(self, dialect: Dialect) -> str:
        return dialect.relation(self.stage_schema, self.stage_table, self.stage_catalog)

    def rows(self, dialect: Dialect) -> tuple[str, list[str]]:
        """FROM clause (relation and filter) of this object's staged rows, and its parameters."""
        if self.source_file is None:
            return self.relation(dialect), []
        where = f"{dialect.ident(SOURCE_COLUMN)} = ?"
        if self.root_table is not None:
            root = dialect.relation(self.stage_schema, self.root_table, self.stage_catalog)
            where = (
                f"{dialect.ident(ROOT_KEY)} IN "
                f"(SELECT {dialect.ident(ROW_ID)} FROM {root} WHERE {where})"
            )
        return f"{self.relation(dialect)} WHERE {where}", [self.source_file]

    def columns(self, con: Session) -> dict[str, str]:
        columns = table_columns(con, self.stage_schema, self.stage_table, self.stage_catalog)
        columns.pop(SOURCE_COLUMN, None)
        if self.root_table is not None:  # scaffolding of the shared stage, not the object's data
            columns.pop(ROOT_KEY, None)
        return columns


def table_columns(
    con: Session, schema: str, table: str, catalog: str | None = None
) -> dict[str, str]:
    """Column name (lower case) -> warehouse type, in table order; empty if no such table.

    `catalog` names an attached database; by default the connection's own. Snowflake's
    information_schema names a type without its parameters (`NUMBER` for NUMBER(18,2), `TEXT`
    for VARCHAR(10)): they are added back, so a type reads as the table declares it.
    """
    dialect = dialect_of(con)
    database = "current_database()" if catalog is None else "?"
    rows = con.execute(
        f"""SELECT column_name, data_type, numeric_precision, numeric_scale,
                  character_maximum_length
           FROM information_schema.columns
           WHERE table_catalog = {database} AND table_schema = ? AND table_name = ?
           ORDER BY ordinal_position""",
        [
            *([] if catalog is None else [dialect.fold(catalog)]),
            dialect.fold(schema),
            dialect.fold(table),
        ],
    ).fetchall()
    if dialect.name != "snowflake":
        return {name.lower(): data_type for name, data_type, *_ in rows}
    return {name.lower(): _snowflake_type(*spelling) for name, *spelling in rows}


def _snowflake_type(
    data_type: str, precision: int | None, scale: int | None, length: int | None
) -> str:
    """Snowflake's information_schema type with its parameters, as DESCRIBE TABLE spells it."""
    if data_type.upper() == "NUMBER" and precision is not None:
        return f"NUMBER({precision},{scale or 0})"
    if data_type.upper() == "TEXT" and length is not None:
        return f"VARCHAR({length})"
    return data_type


def _checked_type(data_type: str, column: str) -> str:
    if not _WAREHOUSE_TYPE.match(data_type):
        raise BadFileError(f"column {column}: unsupported staged type {data_type}")
    return data_type


def _type_probes(con: Session, contract: dict[str, str]) -> list[str]:
    """Per contract column, two aggregates: how many non-null values do not convert to its
    type, and one of them as an example."""
    q = dialect_of(con).ident
    probes = []
    for column, type_name in contract.items():
        text = f"CAST({q(column)} AS VARCHAR)"
        bad = f"{q(column)} IS NOT NULL AND TRY_CAST({text} AS {type_name}) IS NULL"
        probes.append(f"count_if({bad}), min(CASE WHEN {bad} THEN {text} END)")
    return probes


def _type_problem(
    zone: ZoneSpec, contract: dict[str, str], results: Sequence[Any], local_copy: Path | None
) -> str | None:
    """The first contract column `_type_probes`' results say is broken, as a quarantine reason
    naming the column (and its header in the file, if mapped) and the line of the example."""
    for i, (column, type_name) in enumerate(contract.items()):
        bad, example = results[2 * i], results[2 * i + 1]
        if bad:
            header = zone.source_header(column)
            named = f"column {column}" + (f" (header {header!r})" if header else "")
            line = (
                first_line_with(local_copy, column, example)
                if local_copy is not None and zone.format == "csv" and example is not None
                else None
            )
            where = f" on line {line}" if line else ""
            return f"{named}: {bad} value(s) are not {type_name}, e.g. {example!r}{where}"
    return None


def _count_mismatch(validated_records: int, loaded: int) -> str:
    return (
        f"row count mismatch: validation counted {validated_records} record(s), the "
        f"loader wrote {loaded} row(s); nothing of this file was loaded"
    )


def _check_types(
    con: Session,
    source: str,
    params: list[str],
    zone: ZoneSpec,
    contract: dict[str, str],
    local_copy: Path | None,
) -> None:
    """Every non-null value must convert to its contract type; name the column, an example
    and its line."""
    if not contract:
        return
    probes = _type_probes(con, contract)
    result = con.execute(f"SELECT {', '.join(probes)} FROM {source}", params).fetchone()
    problem = _type_problem(zone, contract, result, local_copy)
    if problem:
        raise BadFileError(problem)


@dataclass(frozen=True)
class _Plan:
    """What to insert from one staged table into its raw table."""

    staged: StagedTable
    target: str
    typed: dict[str, str]
    extra: dict[str, str]
    schema: str  # the raw table's


def _prepare(
    con: Session,
    staged: StagedTable,
    zone: ZoneSpec,
    contract: dict[str, str],
    check_types: bool = True,
    local_copy: Path | None = None,
) -> _Plan:
    """Check the staged rows against the contract; on Snowflake, create or widen the raw table
    (DDL, outside the transaction: see `_create_or_widen`)."""
    dialect = dialect_of(con)
    target_schema = zone.schema_name
    source, params = staged.rows(dialect)
    target = dialect.relation(target_schema, staged.raw_table)
    stage_columns = staged.columns(con)
    missing = [c for c in contract if c not in stage_columns]
    if missing:
        raise BadFileError(f"missing contract columns {missing}")
    if check_types:
        # a column the stage already holds in its contract type has nothing to convert
        # (DuckDB's typed read converted it; dlt typed it)
        unconverted = {c: t for c, t in contract.items() if stage_columns[c].upper() != t.upper()}
        _check_types(con, source, params, zone, unconverted, local_copy)

    typed = {c: t.upper() for c, t in contract.items()}
    extra = {
        c: _checked_type(t, c)
        for c, t in stage_columns.items()
        if c not in typed and c not in PROVENANCE_COLUMNS
    }
    plan = _Plan(staged, target, typed, extra, target_schema)
    if not dialect.transactional_ddl:
        _create_or_widen(con, plan)
    return plan


def _create_or_widen(con: Session, plan: _Plan) -> None:
    """Create the raw table, or add the new columns the zone allows (widen, never drop).

    Snowflake commits DDL implicitly, so there it runs before the merge's transaction; DuckDB
    runs it inside, so a merge that fails (a typed read's refused value) leaves no new table."""
    q = dialect_of(con).ident
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {q(plan.schema)}")
    definition = ", ".join(
        f"{q(c)} {t}" for c, t in {**plan.typed, **plan.extra, **PROVENANCE_COLUMNS}.items()
    )
    con.execute(f"CREATE TABLE IF NOT EXISTS {plan.target} ({definition})")
    existing = table_columns(con, plan.schema, plan.staged.raw_table)
    for column, type_name in plan.extra.items():
        if column not in existing:
            con.execute(f"ALTER TABLE {plan.target} ADD COLUMN {q(column)} {type_name}")


@contextmanager
def _merge_transaction(con: Session, plans: list[_Plan]) -> Iterator[None]:
    """The merge's transaction, with the tables' DDL inside it where the warehouse allows."""
    with _transaction(con):
        if dialect_of(con).transactional_ddl:
            for plan in plans:
                _create_or_widen(con, plan)
        yield


def _replace_rows(con: Session, plan: _Plan, obj: LandedObject, loaded_at: datetime) -> int:
    dialect = dialect_of(con)
    q = dialect.ident
    columns = [*plan.typed, *plan.extra, *PROVENANCE_COLUMNS]
    select = ", ".join(
        [f"CAST({q(c)} AS {t})" for c, t in plan.typed.items()]
        + [q(c) for c in plan.extra]
        + ["CAST(? AS VARCHAR)", "CAST(? AS VARCHAR)", "CAST(? AS TIMESTAMP)"]
    )
    source, params = plan.staged.rows(dialect)
    con.execute(f"DELETE FROM {plan.target} WHERE {q('_landfall_file')} = ?", [obj.key])
    # the rows written, as the INSERT reports them (DuckDB and Snowflake both answer it): a
    # count over the stage would read a typed stage's file a second time
    return con.execute(
        f"INSERT INTO {plan.target} ({', '.join(q(c) for c in columns)}) "
        f"SELECT {select} FROM {source}",
        [obj.key, obj.etag, loaded_at.isoformat(sep=" "), *params],
    ).fetchone()[0]


@contextmanager
def _transaction(con: Session) -> Iterator[None]:
    """Rows and their ledger row commit together or not at all."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def merge_staged(
    con: Session,
    zone: ZoneSpec,
    staged: list[StagedTable],
    obj: LandedObject,
    loaded_at: datetime,
    validated_records: int,
    local_copy: Path | None = None,
) -> dict[str, int]:
    """Replace this object's rows in every raw table it feeds and record it, atomically.

    Raises BadFileError (after rolling back) when the staged rows break the zone contract, or
    when the zone's table would get another number of rows than the validator counted records:
    a loader that parsed the file differently has lost or invented rows. `local_copy`, the
    file staged, lets a type problem name the line of its example.
    """
    ledger.ensure_ledger(con)
    plans = [
        _prepare(
            con,
            s,
            zone,
            zone.columns if s.raw_table == zone.table_name else {},
            local_copy=local_copy,
        )
        for s in staged
    ]
    with _merge_transaction(con, plans):
        counts = {p.staged.raw_table: _replace_rows(con, p, obj, loaded_at) for p in plans}
        loaded = counts.get(zone.table_name, 0)
        if loaded != validated_records:
            raise BadFileError(_count_mismatch(validated_records, loaded))
        ledger.record(
            con,
            zone=zone.name,
            object_key=obj.key,
            etag=obj.etag,
            state=ledger.LOADED,
            rows=loaded,
            size=obj.size,
            at=loaded_at,
        )
    return counts


def record_quarantine(
    con: Session,
    zone: ZoneSpec,
    obj: LandedObject,
    reason: str,
    at: datetime,
) -> None:
    """Record a bad version; it replaces the key's earlier rows (its current content is bad)."""
    _record_without_rows(con, zone, obj, ledger.QUARANTINED, at, reason)


def record_empty_export(con: Session, zone: ZoneSpec, obj: LandedObject, at: datetime) -> None:
    """Record a valid version with no records (a header-only export) as loaded with 0 rows; it
    replaces the key's earlier rows like any load. No loader runs: there is nothing to stage."""
    _record_without_rows(con, zone, obj, ledger.LOADED, at, None)


def _record_without_rows(
    con: Session,
    zone: ZoneSpec,
    obj: LandedObject,
    state: str,
    at: datetime,
    reason: str | None,
) -> None:
    dialect = dialect_of(con)
    ledger.ensure_ledger(con)
    tables = [
        t for t in [zone.table_name, *zone.child_tables] if table_columns(con, zone.schema_name, t)
    ]
    with _transaction(con):
        for table in tables:
            con.execute(
                f"DELETE FROM {dialect.relation(zone.schema_name, table)} "
                f"WHERE {dialect.ident('_landfall_file')} = ?",
                [obj.key],
            )
        ledger.record(
            con,
            zone=zone.name,
            object_key=obj.key,
            etag=obj.etag,
            state=state,
            rows=0,
            size=obj.size,
            at=at,
            reason=reason,
        )


def drop_staged(con: Session, staged: list[StagedTable]) -> None:
    dialect = dialect_of(con)
    for s in staged:
        if s.stage_catalog is None:  # attached scratch databases go with their folder
            con.execute(f"DROP TABLE IF EXISTS {s.relation(dialect)}")


@dataclass(frozen=True)
class BatchItem:
    """One object of a run's shared stage: its rows are those tagged with `source_file`."""

    obj: LandedObject
    source_file: str
    records: int


_CHUNK = 300  # objects per statement: bounds the number of bound parameters


def _verdicts(
    con: Session, staged: StagedTable, zone: ZoneSpec, items: list[BatchItem]
) -> tuple[dict[str, int], dict[str, str]]:
    """Per object, in one pass over the shared stage: its staged row count, and the reason it
    must be quarantined (the first contract type it breaks, or a row-count mismatch)."""
    dialect = dialect_of(con)
    q = dialect.ident
    contract = zone.columns
    probes = ["count(*)", *_type_probes(con, contract)]
    found = {
        row[0]: row[1:]
        for row in con.execute(
            f"SELECT {q(SOURCE_COLUMN)}, {', '.join(probes)} FROM {staged.relation(dialect)} "
            f"GROUP BY {q(SOURCE_COLUMN)}"
        ).fetchall()
    }
    counts, reasons = {}, {}
    for item in items:
        row = found.get(item.source_file)
        counts[item.obj.key] = row[0] if row else 0
        problem = _type_problem(zone, contract, row[1:], Path(item.source_file)) if row else None
        if problem is None and counts[item.obj.key] != item.records:
            problem = _count_mismatch(item.records, counts[item.obj.key])
        if problem:
            reasons[item.obj.key] = problem
    return counts, reasons


def merge_batch(
    con: Session,
    zone: ZoneSpec,
    staged: StagedTable,
    items: list[BatchItem],
    loaded_at: datetime,
) -> tuple[dict[str, int], dict[str, str]]:
    """Merge the objects of a shared stage set-wise: per object the same checks and outcome as
    `merge_staged` (contract types, rows = validated records, delete-by-file + insert + ledger
    row), the good ones in one transaction. Returns (rows per loaded key, reason per refused
    key); the refused are left for the caller to quarantine. Any error rolls everything back:
    the caller then merges each object on its own to isolate it."""
    dialect = dialect_of(con)
    q = dialect.ident
    ledger.ensure_ledger(con)
    counts, reasons = _verdicts(con, staged, zone, items)
    good = [item for item in items if item.obj.key not in reasons]
    if not good:
        return {}, reasons
    plan = _prepare(con, staged, zone, zone.columns, check_types=False)
    columns = [*plan.typed, *plan.extra, *PROVENANCE_COLUMNS]
    select = ", ".join(
        [f"CAST(s.{q(c)} AS {t})" for c, t in plan.typed.items()]
        + [f"s.{q(c)}" for c in plan.extra]
        + ["f._landfall_key", "f._landfall_etag", "CAST(? AS TIMESTAMP)"]
    )
    with _merge_transaction(con, [plan]):
        for chunk in chunks(good, _CHUNK):
            keys = [item.obj.key for item in chunk]
            con.execute(
                f"DELETE FROM {plan.target} WHERE {q('_landfall_file')} IN "
                f"({', '.join('?' * len(keys))})",
                keys,
            )
            files = ", ".join("(?, ?, ?)" for _ in chunk)
            con.execute(
                f"INSERT INTO {plan.target} ({', '.join(q(c) for c in columns)}) "
                f"SELECT {select} FROM {staged.relation(dialect)} AS s JOIN (VALUES {files}) "
                "AS f(_landfall_source, _landfall_key, _landfall_etag) "
                f"ON s.{q(SOURCE_COLUMN)} = f._landfall_source",
                [
                    loaded_at.isoformat(sep=" "),
                    *[v for i in chunk for v in (i.source_file, i.obj.key, i.obj.etag)],
                ],
            )
        ledger.record_many(
            con,
            zone=zone.name,
            versions=[(i.obj.key, i.obj.etag, counts[i.obj.key], i.obj.size) for i in good],
            state=ledger.LOADED,
            at=loaded_at,
        )
    return {item.obj.key: counts[item.obj.key] for item in good}, reasons
