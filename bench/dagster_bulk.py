"""The one place the benchmarks write Dagster's storage tables directly (Postgres instance).

Why: the scale benchmark needs a zone with a million objects whose partition set (and
materialization history) is what retention leaves; Dagster's API writes one event or partition
per call (`report_runless_asset_event`, a few ms each: minutes for the kept ones, about an hour
for a million). Here one real event is written through the API and copied set-wise inside
Postgres (`INSERT … SELECT` over `generate_series`), so every copied row is what Dagster itself
wrote apart from its partition key; partitions are registered the same way. Nothing else in the
project touches these tables, and only tables Dagster's own API fills are written
(`event_logs`, `dynamic_partitions`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2

TEMPLATE = "bench/TEMPLATE.csv"


@dataclass(frozen=True)
class Postgres:
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"

    def dsn(self, database: str) -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={database}"


@contextmanager
def _connect(dsn: str, autocommit: bool = False) -> Iterator:
    con = psycopg2.connect(dsn)
    con.autocommit = autocommit
    try:
        yield con
        if not autocommit:
            con.commit()
    finally:
        con.close()


def fresh_database(pg: Postgres, name: str) -> None:
    """(Re)create an empty database `name` (the benchmark's own; never a shared one)."""
    with _connect(pg.dsn("postgres"), autocommit=True) as con, con.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')


def drop_database(pg: Postgres, name: str) -> None:
    with _connect(pg.dsn("postgres"), autocommit=True) as con, con.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write_instance(home: Path, pg: Postgres, database: str) -> None:
    """A Dagster home whose instance stores everything in `database`."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(
        "storage:\n  postgres:\n    postgres_db:\n"
        f"      hostname: {pg.host}\n      port: {pg.port}\n      username: {pg.user}\n"
        f'      password: ""\n      db_name: {database}\n'
        # SQLAlchemy 2.1 defaults to psycopg 3; dagster-postgres speaks psycopg2
        "      scheme: postgresql+psycopg2\n"
        "telemetry:\n  enabled: false\n"
    )


def key_sql(prefix: str) -> str:
    """SQL for the key of object number `g` (see `bench.scale.object_key`)."""
    return f"'{prefix}' || 'bench/part-' || lpad(g::text, 7, '0') || '.csv'"


def copy_materializations(
    pg: Postgres, database: str, asset_key: str, prefix: str, start: int, stop: int
) -> None:
    """Materializations of objects start..stop-1 of the asset, copied from the one event the
    API wrote for partition TEMPLATE (a runless materialization of the asset)."""
    key = key_sql(prefix)
    with _connect(pg.dsn(database)) as con, con.cursor() as cur:
        cur.execute(
            f"""INSERT INTO event_logs
                    (run_id, event, dagster_event_type, timestamp, step_key, asset_key, partition)
                SELECT t.run_id, replace(t.event, %(template)s, {key}), t.dagster_event_type,
                       t.timestamp, t.step_key, t.asset_key, {key}
                FROM event_logs t, generate_series(%(start)s, %(stop)s - 1) AS g
                WHERE t.asset_key = %(asset)s AND t.partition = %(template)s
                  AND t.dagster_event_type = 'ASSET_MATERIALIZATION'
                ORDER BY g""",
            {"template": TEMPLATE, "start": start, "stop": stop, "asset": asset_key},
        )
        if cur.rowcount != stop - start:
            raise RuntimeError(f"copied {cur.rowcount} materializations, expected {stop - start}")


def register_partitions(
    pg: Postgres, database: str, partitions_def: str, prefix: str, start: int, stop: int
) -> None:
    """Register objects start..stop-1 as partitions, oldest first (ids ascending)."""
    with _connect(pg.dsn(database)) as con, con.cursor() as cur:
        cur.execute(
            f"""INSERT INTO dynamic_partitions (partitions_def_name, partition, create_timestamp)
                SELECT %(name)s, {key_sql(prefix)}, now() AT TIME ZONE 'UTC'
                FROM generate_series(%(start)s, %(stop)s - 1) AS g ORDER BY g""",
            {"name": partitions_def, "start": start, "stop": stop},
        )
        cur.execute("ANALYZE dynamic_partitions")
        cur.execute("ANALYZE event_logs")
