"""The production warehouse: Snowflake, through dagster-snowflake's SnowflakeResource."""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import dagster as dg
from dagster_snowflake import SnowflakeResource

from landing import raw_load, sling_loader
from landing.dialects import SNOWFLAKE, Dialect
from landing.objects import short_hash
from landing.warehouse import STAGE_SCHEMA, Staging, dlt_batch_staging, dlt_staging
from landing.zones import ZoneSpec

_SLING_URL_COLUMN = "_sling_stream_url"  # SLING_STREAM_URL_COLUMN=true: each row's file


class SnowflakeSession:
    """A Snowflake connection as a landing session (qmark binds, one cursor)."""

    dialect = SNOWFLAKE

    def __init__(self, connection: Any) -> None:
        self._cursor = connection.cursor()

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        self._cursor.execute(sql, list(params) if params is not None else None)
        return self._cursor


class SnowflakeWarehouse(dg.ConfigurableResource):
    """Production: raw tables, staging and the ledger in Snowflake, reached through
    dagster-snowflake's SnowflakeResource (credentials from EnvVar). Sling stages CSV files
    with `sling_connection()`; `sling_use_bulk: false` is the one setting the fakesnow
    stand-in needs (it cannot PUT to a stage), bulk loading stays the default for an account.
    """

    snowflake: SnowflakeResource
    sling_use_bulk: bool = True
    dlt_destination: str = "snowflake"  # or "sqlalchemy" (see common.settings)

    @property
    def dialect(self) -> Dialect:
        return SNOWFLAKE

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[SnowflakeSession]:
        with self.snowflake.get_connection() as connection:
            yield SnowflakeSession(connection)

    def sling_connection(self) -> dict[str, Any] | str:
        """Sling's Snowflake target, from the same settings as the SnowflakeResource."""
        sf = self.snowflake
        extra = dict(sf.additional_snowflake_connection_args or {})
        connection: dict[str, Any] = {
            "type": "snowflake",
            "account": sf.account,
            "user": sf.user,
            "password": sf.password,
            "database": sf.database,
            "schema": sf.schema_ or "PUBLIC",
            "warehouse": sf.warehouse,
            "role": sf.role,
        }
        connection = {k: v for k, v in connection.items() if v}
        if extra.get("host"):
            # A host other than <account>.snowflakecomputing.com (the stand-in, a private
            # link): Sling takes host, port and protocol only in its URL form.
            query = urlencode(
                {
                    k: v
                    for k, v in connection.items()
                    if k not in ("type", "user", "password", "database")
                }
                | {"protocol": extra.get("protocol", "https")}
            )
            port = f":{extra['port']}" if extra.get("port") else ""
            return (
                f"snowflake://{quote(sf.user, safe='')}:{quote(sf.password or '', safe='')}"
                f"@{extra['host']}{port}/{sf.database}?{query}"
            )
        return connection

    def _csv_header(self, local_copy: Path) -> list[str]:
        with local_copy.open(encoding="utf-8", newline="") as fh:
            return [h.strip() for h in next(csv.reader(fh))]

    def _create_stage(self, stage: raw_load.StagedTable, columns: list[str]) -> None:
        """The staging table Sling truncates and fills: text columns named by the header."""
        with self.connect() as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {SNOWFLAKE.ident(STAGE_SCHEMA)}")
            con.execute(
                f"CREATE OR REPLACE TABLE {stage.relation(SNOWFLAKE)} ("
                + ", ".join(f"{SNOWFLAKE.ident(c, 'column')} VARCHAR" for c in columns)
                + ")"
            )

    def stage_with_sling(
        self, zone: ZoneSpec, local_copy: Path, token: str, log: Callable[[str], None]
    ) -> Staging:
        """Sling loads the local copy into a staging table of the warehouse that we create first
        (text columns named by the validated header) and Sling truncates and fills: Sling then
        never creates a table inside its transaction (the stand-in refuses that)."""
        started = time.monotonic()
        stage = raw_load.StagedTable(zone.table_name, STAGE_SCHEMA, f"{zone.name}_{token}")
        self._create_stage(stage, self._csv_header(local_copy))
        rows = sling_loader.stage_into_table(
            zone,
            local_copy,
            local_copy.parent,
            self.sling_connection(),
            f"{STAGE_SCHEMA}.{stage.stage_table}",
            {"mode": "truncate", "target_options": {"use_bulk": self.sling_use_bulk}},
            log,
        )
        log(f"sling staged {rows} rows into {stage.relation(SNOWFLAKE)}")
        return Staging([stage], {"sling_seconds": round(time.monotonic() - started, 3)})

    def stage_batch(
        self, zone: ZoneSpec, local_copies: list[Path], folder: Path, log: Callable[[str], None]
    ) -> Staging | None:
        """All validated local copies of a run staged by one Sling stream over a folder of
        links to them, each row tagged with its file's URL (Sling's `_sling_stream_url`, renamed
        to the shared stage's source column). None (each object stages on its own) when the
        copies' headers name different columns: Sling would then widen its table inside its
        load transaction, which the stand-in refuses."""
        if zone.loader == "dlt":
            return dlt_batch_staging(self, zone, local_copies, folder, self._dlt_destination(), log)
        if zone.format != "csv":
            return None
        headers = [self._csv_header(p) for p in local_copies]
        if len({frozenset(h.lower() for h in header) for header in headers}) > 1:
            log("the run's files have different columns: each object stages on its own")
            return None
        started = time.monotonic()
        files = folder / "sling-batch" / "files"
        files.mkdir(parents=True)
        sources = {}
        for i, copy in enumerate(local_copies):
            link = files / f"{i}{copy.suffix}"
            os.link(copy, link)  # the same bytes, validated once; no second copy on disk
            sources[str(copy)] = link.as_uri()
        stage = raw_load.StagedTable(
            zone.table_name, STAGE_SCHEMA, f"{zone.name}_batch_{short_hash(str(folder))}"
        )
        url_column = SNOWFLAKE.ident(_SLING_URL_COLUMN, "column")
        self._create_stage(stage, [*headers[0], _SLING_URL_COLUMN])
        try:
            rows = sling_loader.stage_into_table(
                zone,
                files,
                folder / "sling-batch",
                self.sling_connection(),
                f"{STAGE_SCHEMA}.{stage.stage_table}",
                {"mode": "truncate", "target_options": {"use_bulk": self.sling_use_bulk}},
                log,
            )
            with self.connect() as con:
                con.execute(
                    f"ALTER TABLE {stage.relation(SNOWFLAKE)} RENAME COLUMN {url_column} TO "
                    f"{SNOWFLAKE.ident(raw_load.SOURCE_COLUMN, 'column')}"
                )
        except BaseException:
            # the objects then stage one by one: leave no half-filled batch stage behind
            with self.connect() as con:
                raw_load.drop_staged(con, [stage])
            raise
        log(f"sling staged {rows} rows of {len(local_copies)} objects in one stream")
        return Staging(
            [stage], {"sling_seconds": round(time.monotonic() - started, 3)}, sources=sources
        )

    def stage_with_dlt(self, zone: ZoneSpec, local_copy: Path, token: str) -> Staging:
        return dlt_staging(zone, local_copy, token, self._dlt_destination())

    def _dlt_destination(self) -> object:
        """dlt's Snowflake destination, or its sqlalchemy destination over the Snowflake
        dialect (the stand-in: dlt's own Snowflake loader needs a stage)."""
        import dlt

        sf = self.snowflake
        if self.dlt_destination == "sqlalchemy":
            import sqlalchemy

            extra = dict(sf.additional_snowflake_connection_args or {})
            url = sqlalchemy.engine.URL.create(
                "snowflake",
                username=sf.user,
                password=sf.password,
                host=sf.account,
                database=sf.database,
                query={"warehouse": sf.warehouse} if sf.warehouse else {},
            )
            # host/port/protocol are refused in the URL's query: connect arguments
            engine = sqlalchemy.create_engine(url, connect_args={"account": sf.account, **extra})
            return dlt.destinations.sqlalchemy(engine)
        credentials = {
            "database": sf.database,
            "username": sf.user,
            "password": sf.password,
            "host": sf.account,
            "warehouse": sf.warehouse,
            "role": sf.role,
        }
        return dlt.destinations.snowflake(credentials={k: v for k, v in credentials.items() if v})

    @contextmanager
    def merge_session(self, staging: Staging) -> Iterator[SnowflakeSession]:
        with self.connect() as con:
            try:
                yield con
            finally:
                raw_load.drop_staged(con, staging.tables)
                if staging.drop_schema:
                    con.execute(
                        f"DROP SCHEMA IF EXISTS {SNOWFLAKE.ident(staging.drop_schema)} CASCADE"
                    )
