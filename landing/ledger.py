"""The ledger of landed objects: one row per object version, one state each.

It lives in the warehouse, beside the raw rows, so that loading a file and recording it are one
transaction: the ledger can never say "loaded" for rows that are not there, or the reverse.
States: loaded | quarantined | superseded (an earlier version of a key that was overwritten).
Objects the sensor registered but that have not finished are "pending": the Dagster instance
knows them as partitions without a ledger row (see `landfall status`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

LEDGER_SCHEMA, LEDGER_TABLE = "landfall", "ledger"
LEDGER = f'"{LEDGER_SCHEMA}"."{LEDGER_TABLE}"'
LOADED, QUARANTINED, SUPERSEDED = "loaded", "quarantined", "superseded"


@dataclass(frozen=True)
class LedgerEntry:
    zone: str
    object_key: str
    etag: str
    state: str
    rows: int
    reason: str | None
    size: int
    updated_at: datetime


def ensure_ledger(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{LEDGER_SCHEMA}"')
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS {LEDGER} (
            zone VARCHAR NOT NULL,
            object_key VARCHAR NOT NULL,
            etag VARCHAR NOT NULL,
            state VARCHAR NOT NULL,
            rows BIGINT NOT NULL,
            reason VARCHAR,
            size BIGINT NOT NULL,
            updated_at TIMESTAMP NOT NULL,
            PRIMARY KEY (zone, object_key, etag)
        )"""
    )


def record(
    con: duckdb.DuckDBPyConnection,
    *,
    zone: str,
    object_key: str,
    etag: str,
    state: str,
    rows: int,
    size: int,
    at: datetime,
    reason: str | None = None,
) -> None:
    """Record the current version of a key; earlier versions of the same key become superseded.

    Call inside the transaction that wrote (or refused) the rows.
    """
    con.execute(
        f"""UPDATE {LEDGER} SET state = ?, rows = 0, updated_at = ?
            WHERE zone = ? AND object_key = ? AND etag <> ? AND state <> ?""",
        [SUPERSEDED, at, zone, object_key, etag, SUPERSEDED],
    )
    con.execute(
        f"""INSERT OR REPLACE INTO {LEDGER}
            (zone, object_key, etag, state, rows, reason, size, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
        [zone, object_key, etag, state, rows, reason, size, at],
    )


def _exists(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
            "AND table_name = ?",
            [LEDGER_SCHEMA, LEDGER_TABLE],
        ).fetchone()[0]
    )


def entries(con: duckdb.DuckDBPyConnection, zone: str | None = None) -> list[LedgerEntry]:
    """Every version of every object, oldest first per key (works on read-only connections)."""
    if not _exists(con):
        return []
    where, params = ("WHERE zone = ?", [zone]) if zone else ("", [])
    rows = con.execute(
        f"""SELECT zone, object_key, etag, state, rows, reason, size, updated_at
            FROM {LEDGER} {where} ORDER BY zone, object_key, updated_at""",
        params,
    ).fetchall()
    return [LedgerEntry(*row) for row in rows]


def current_entries(
    con: duckdb.DuckDBPyConnection, zone: str, object_keys: list[str]
) -> dict[tuple[str, str], LedgerEntry]:
    """(key, etag) -> its loaded or quarantined entry, for the given keys of a zone."""
    if not object_keys or not _exists(con):
        return {}
    rows = con.execute(
        f"""SELECT zone, object_key, etag, state, rows, reason, size, updated_at
            FROM {LEDGER} WHERE zone = ? AND state <> ? AND list_contains(?, object_key)""",
        [zone, SUPERSEDED, object_keys],
    ).fetchall()
    return {(row[1], row[2]): LedgerEntry(*row) for row in rows}


def quarantined_count(con: duckdb.DuckDBPyConnection, zone: str) -> int:
    """How many keys of a zone are quarantined in their current version (a re-upload that loads
    supersedes the bad one)."""
    if not _exists(con):
        return 0
    return con.execute(
        f"SELECT count(*) FROM {LEDGER} WHERE zone = ? AND state = ?", [zone, QUARANTINED]
    ).fetchone()[0]
