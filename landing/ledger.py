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

from landing.dialects import Session, dialect_of

LEDGER_SCHEMA, LEDGER_TABLE = "landfall", "ledger"


_CHUNK = 300  # versions per statement: bounds the number of bound parameters


def _rows(con: Session) -> str:
    # ROWS is a reserved word in Snowflake: this one column name is always quoted
    return dialect_of(con).ident("rows")


def _ledger(con: Session) -> str:
    return dialect_of(con).relation(LEDGER_SCHEMA, LEDGER_TABLE)


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


def ensure_ledger(con: Session) -> None:
    """Create the ledger if needed (DDL: call outside the transaction that records)."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {dialect_of(con).ident(LEDGER_SCHEMA)}")
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS {_ledger(con)} (
            zone VARCHAR NOT NULL,
            object_key VARCHAR NOT NULL,
            etag VARCHAR NOT NULL,
            state VARCHAR NOT NULL,
            {_rows(con)} BIGINT NOT NULL,
            reason VARCHAR,
            size BIGINT NOT NULL,
            updated_at TIMESTAMP NOT NULL,
            PRIMARY KEY (zone, object_key, etag)
        )"""
    )


def record(
    con: Session,
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
    record_many(
        con,
        zone=zone,
        versions=[(object_key, etag, rows, size)],
        state=state,
        at=at,
        reason=reason,
    )


def record_many(
    con: Session,
    *,
    zone: str,
    versions: list[tuple[str, str, int, int]],
    state: str,
    at: datetime,
    reason: str | None = None,
) -> None:
    """Record versions (key, etag, rows, size) in one state: every earlier row of their keys
    becomes superseded, each version's own row is replaced. Call inside the transaction that
    wrote (or refused) their rows."""
    ledger, stamp = _ledger(con), at.isoformat(sep=" ")
    for start in range(0, len(versions), _CHUNK):
        chunk = versions[start : start + _CHUNK]
        keys = [key for key, _, _, _ in chunk]
        in_keys = ", ".join("?" * len(keys))
        con.execute(
            f"""UPDATE {ledger} SET state = ?, {_rows(con)} = 0, updated_at = CAST(? AS TIMESTAMP)
                WHERE zone = ? AND state <> ? AND object_key IN ({in_keys})""",
            [SUPERSEDED, stamp, zone, SUPERSEDED, *keys],
        )
        # replace each version's row (portable: no INSERT OR REPLACE / MERGE dialects)
        pairs = ", ".join("(?, ?)" for _ in chunk)
        con.execute(
            f"""DELETE FROM {ledger} WHERE zone = ? AND EXISTS (
                SELECT 1 FROM (VALUES {pairs}) AS v(k, e)
                WHERE v.k = {ledger}.object_key AND v.e = {ledger}.etag)""",
            [zone, *[v for key, etag, _, _ in chunk for v in (key, etag)]],
        )
        values = ", ".join("(?, ?, ?, ?, ?, ?, ?, CAST(? AS TIMESTAMP))" for _ in chunk)
        con.execute(
            f"""INSERT INTO {ledger}
                (zone, object_key, etag, state, {_rows(con)}, reason, size, updated_at)
                VALUES {values}""",
            [
                v
                for key, etag, rows, size in chunk
                for v in (zone, key, etag, state, rows, reason, size, stamp)
            ],
        )


def _exists(con: Session) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
            "AND table_name = ?",
            [dialect_of(con).fold(LEDGER_SCHEMA), dialect_of(con).fold(LEDGER_TABLE)],
        ).fetchone()[0]
    )


def entries(con: Session, zone: str | None = None) -> list[LedgerEntry]:
    """Every version of every object, oldest first per key (works on read-only connections)."""
    if not _exists(con):
        return []
    where, params = ("WHERE zone = ?", [zone]) if zone else ("", [])
    rows = con.execute(
        f"""SELECT zone, object_key, etag, state, {_rows(con)}, reason, size, updated_at
            FROM {_ledger(con)} {where} ORDER BY zone, object_key, updated_at""",
        params,
    ).fetchall()
    return [LedgerEntry(*row) for row in rows]


def current_entries(
    con: Session, zone: str, object_keys: list[str]
) -> dict[tuple[str, str], LedgerEntry]:
    """(key, etag) -> its loaded or quarantined entry, for the given keys of a zone."""
    if not object_keys or not _exists(con):
        return {}
    found: dict[tuple[str, str], LedgerEntry] = {}
    for start in range(0, len(object_keys), 1000):
        chunk = object_keys[start : start + 1000]
        rows = con.execute(
            f"""SELECT zone, object_key, etag, state, {_rows(con)}, reason, size, updated_at
                FROM {_ledger(con)} WHERE zone = ? AND state <> ?
                AND object_key IN ({", ".join("?" * len(chunk))})""",
            [zone, SUPERSEDED, *chunk],
        ).fetchall()
        found |= {(row[1], row[2]): LedgerEntry(*row) for row in rows}
    return found


def quarantined_count(con: Session, zone: str) -> int:
    """How many keys of a zone are quarantined in their current version (a re-upload that loads
    supersedes the bad one)."""
    if not _exists(con):
        return 0
    return con.execute(
        f"SELECT count(*) FROM {_ledger(con)} WHERE zone = ? AND state = ?", [zone, QUARANTINED]
    ).fetchone()[0]


def state_counts(con: Session, zone: str | None = None) -> dict[str, int]:
    """How many versions are in each state (one grouped scan: bounded output at any size)."""
    if not _exists(con):
        return {}
    where, params = ("WHERE zone = ?", [zone]) if zone else ("", [])
    rows = con.execute(
        f"SELECT state, count(*) FROM {_ledger(con)} {where} GROUP BY state", params
    ).fetchall()
    return {state: int(n) for state, n in rows}


def newest(
    con: Session, zone: str | None = None, limit: int | None = None, offset: int = 0
) -> list[LedgerEntry]:
    """Versions newest first; ties (a version and the one it superseded share a timestamp) in
    key order, the current version first, so pages neither overlap nor skip. `limit` None: all."""
    if not _exists(con):
        return []
    where, params = ("WHERE zone = ?", [zone]) if zone else ("", [])
    page, page_params = "", []
    if limit is not None:
        page, page_params = "LIMIT ? OFFSET ?", [int(limit), int(offset)]
    elif offset:
        page, page_params = "OFFSET ?", [int(offset)]
    rows = con.execute(
        f"""SELECT zone, object_key, etag, state, {_rows(con)}, reason, size, updated_at
            FROM {_ledger(con)} {where}
            ORDER BY updated_at DESC, zone, object_key,
                CASE WHEN state = ? THEN 1 ELSE 0 END, etag {page}""",
        [*params, SUPERSEDED, *page_params],
    ).fetchall()
    return [LedgerEntry(*row) for row in rows]


def recorded_keys(con: Session, zone: str, object_keys: list[str]) -> set[str]:
    """The given keys of a zone that have any ledger row (of any version)."""
    if not object_keys or not _exists(con):
        return set()
    found: set[str] = set()
    for start in range(0, len(object_keys), 1000):
        chunk = object_keys[start : start + 1000]
        rows = con.execute(
            f"""SELECT DISTINCT object_key FROM {_ledger(con)} WHERE zone = ?
                AND object_key IN ({", ".join("?" * len(chunk))})""",
            [zone, *chunk],
        ).fetchall()
        found |= {row[0] for row in rows}
    return found


def unrecorded_keys(con: Session, zone: str, object_keys: list[str]) -> set[str]:
    """The given keys of a zone that have no ledger row at all: one anti-join on DuckDB (a list
    parameter), chunked lookups elsewhere."""
    if not object_keys:
        return set()
    if not _exists(con):
        return set(object_keys)
    if dialect_of(con).name == "duckdb":
        rows = con.execute(
            f"""SELECT k FROM unnest(CAST(? AS VARCHAR[])) AS t(k)
                WHERE k NOT IN (SELECT object_key FROM {_ledger(con)} WHERE zone = ?)""",
            [list(object_keys), zone],
        ).fetchall()
        return {row[0] for row in rows}
    return set(object_keys) - recorded_keys(con, zone, object_keys)
