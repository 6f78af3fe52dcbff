"""Merge a staged file into its raw table: contract-typed, delete-by-file then insert, one
transaction together with the ledger row. Re-loading a file replaces its rows, never doubles them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import duckdb

from landing import ledger
from landing.identifiers import qualified, quote_identifier
from landing.objects import LandedObject
from landing.validation import BadFileError
from landing.zones import ZoneSpec

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

    @property
    def relation(self) -> str:
        name = qualified(self.stage_schema, self.stage_table)
        if self.stage_catalog is None:
            return name
        return f"{quote_identifier(self.stage_catalog, 'catalog')}.{name}"

    def columns(self, con: duckdb.DuckDBPyConnection) -> dict[str, str]:
        return table_columns(con, self.stage_schema, self.stage_table, self.stage_catalog)


def table_columns(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, catalog: str | None = None
) -> dict[str, str]:
    """Column name (lower case) -> warehouse type, in table order; empty if no such table.

    `catalog` names an attached database; by default the connection's own.
    """
    rows = con.execute(
        """SELECT column_name, data_type FROM information_schema.columns
           WHERE table_catalog = coalesce(?, current_database())
             AND table_schema = ? AND table_name = ? ORDER BY ordinal_position""",
        [catalog, schema, table],
    ).fetchall()
    return {name.lower(): data_type for name, data_type in rows}


def _checked_type(data_type: str, column: str) -> str:
    if not _WAREHOUSE_TYPE.match(data_type):
        raise BadFileError(f"column {column}: unsupported staged type {data_type}")
    return data_type


def _check_types(con: duckdb.DuckDBPyConnection, source: str, contract: dict[str, str]) -> None:
    """Every non-null value must convert to its contract type; name the column and an example."""
    if not contract:
        return
    probes = ", ".join(
        f"count(*) FILTER (WHERE {quote_identifier(c)} IS NOT NULL AND "
        f"TRY_CAST({quote_identifier(c)} AS {t}) IS NULL), "
        f"min({quote_identifier(c)}::VARCHAR) FILTER (WHERE {quote_identifier(c)} IS NOT NULL "
        f"AND TRY_CAST({quote_identifier(c)} AS {t}) IS NULL)"
        for c, t in contract.items()
    )
    result = con.execute(f"SELECT {probes} FROM {source}").fetchone()
    for i, (column, type_name) in enumerate(contract.items()):
        bad, example = result[2 * i], result[2 * i + 1]
        if bad:
            raise BadFileError(
                f"column {column}: {bad} value(s) are not {type_name}, e.g. {example!r}"
            )


def _replace_rows(
    con: duckdb.DuckDBPyConnection,
    staged: StagedTable,
    target_schema: str,
    contract: dict[str, str],
    obj: LandedObject,
    loaded_at: datetime,
) -> int:
    source = staged.relation
    target = qualified(target_schema, staged.raw_table)
    stage_columns = staged.columns(con)
    missing = [c for c in contract if c not in stage_columns]
    if missing:
        raise BadFileError(f"missing contract columns {missing}")
    _check_types(con, source, contract)

    typed = {c: t.upper() for c, t in contract.items()}
    extra = {
        c: _checked_type(t, c)
        for c, t in stage_columns.items()
        if c not in typed and c not in PROVENANCE_COLUMNS
    }
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(target_schema)}")
    definition = ", ".join(
        f"{quote_identifier(c)} {t}" for c, t in {**typed, **extra, **PROVENANCE_COLUMNS}.items()
    )
    con.execute(f"CREATE TABLE IF NOT EXISTS {target} ({definition})")
    existing = table_columns(con, target_schema, staged.raw_table)
    for column, type_name in extra.items():
        if column not in existing:  # a new column the zone allows: widen, never drop
            con.execute(f"ALTER TABLE {target} ADD COLUMN {quote_identifier(column)} {type_name}")

    select = ", ".join(
        [f"CAST({quote_identifier(c)} AS {t}) AS {quote_identifier(c)}" for c, t in typed.items()]
        + [quote_identifier(c) for c in extra]
        + [
            "?::VARCHAR AS _landfall_file",
            "?::VARCHAR AS _landfall_etag",
            "?::TIMESTAMP AS _landfall_loaded_at",
        ]
    )
    con.execute(f"DELETE FROM {target} WHERE _landfall_file = ?", [obj.key])
    con.execute(
        f"INSERT INTO {target} BY NAME SELECT {select} FROM {source}",
        [obj.key, obj.etag, loaded_at],
    )
    return con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Rows and their ledger row commit together or not at all."""
    ledger.ensure_ledger(con)
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def merge_staged(
    con: duckdb.DuckDBPyConnection,
    zone: ZoneSpec,
    staged: list[StagedTable],
    obj: LandedObject,
    loaded_at: datetime,
    validated_records: int,
) -> dict[str, int]:
    """Replace this object's rows in every raw table it feeds and record it, atomically.

    Raises BadFileError (after rolling back) when the staged rows break the zone contract, or
    when the zone's table would get another number of rows than the validator counted records:
    a loader that parsed the file differently has lost or invented rows.
    """
    with _transaction(con):
        counts = {
            s.raw_table: _replace_rows(
                con,
                s,
                zone.schema_name,
                zone.columns if s.raw_table == zone.table_name else {},
                obj,
                loaded_at,
            )
            for s in staged
        }
        loaded = counts.get(zone.table_name, 0)
        if loaded != validated_records:
            raise BadFileError(
                f"row count mismatch: validation counted {validated_records} record(s), the "
                f"loader wrote {loaded} row(s); nothing of this file was loaded"
            )
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
    con: duckdb.DuckDBPyConnection,
    zone: ZoneSpec,
    obj: LandedObject,
    reason: str,
    at: datetime,
) -> None:
    """Record a bad version; it replaces the key's earlier rows (its current content is bad)."""
    _record_without_rows(con, zone, obj, ledger.QUARANTINED, at, reason)


def record_empty_export(
    con: duckdb.DuckDBPyConnection, zone: ZoneSpec, obj: LandedObject, at: datetime
) -> None:
    """Record a valid version with no records (a header-only export) as loaded with 0 rows; it
    replaces the key's earlier rows like any load. No loader runs: there is nothing to stage."""
    _record_without_rows(con, zone, obj, ledger.LOADED, at, None)


def _record_without_rows(
    con: duckdb.DuckDBPyConnection,
    zone: ZoneSpec,
    obj: LandedObject,
    state: str,
    at: datetime,
    reason: str | None,
) -> None:
    with _transaction(con):
        for table in [zone.table_name, *zone.child_tables]:
            if table_columns(con, zone.schema_name, table):
                con.execute(
                    f"DELETE FROM {qualified(zone.schema_name, table)} WHERE _landfall_file = ?",
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


def drop_staged(con: duckdb.DuckDBPyConnection, staged: list[StagedTable]) -> None:
    for s in staged:
        if s.stage_catalog is None:  # attached scratch databases go with their folder
            con.execute(f"DROP TABLE IF EXISTS {s.relation}")
