"""Snowflake's SQL on the local DuckDB warehouse: a real Snowpark ``Session`` whose queries a
fakesnow server (a thread of this process, on a loopback port of its own) translates and runs
on DuckDB, with the warehouse file attached. So locally the model code runs as the SQL Snowpark
generates for Snowflake, pushed down to DuckDB, instead of row by row in Snowpark's
local-testing emulator.

This module is the one place that uses fakesnow's private names (its server app and shared
instance, its connection and cursor classes, its macros); each is pinned by a test in
tests/ml/test_local_snowflake.py, so a fakesnow upgrade that moves one fails there first.
fakesnow is pinned in pyproject.toml for the same reason.

Three gaps of fakesnow 0.11 are closed here: its helper macros are created as TEMP macros of
each session's DuckDB connection (fakesnow writes them into the database it creates; the
warehouse file is not its to write); ``SELECT $1, $2 FROM VALUES (...)`` (how Snowpark's
``create_dataframe`` of local rows reads) names the VALUES columns instead of leaving DuckDB
prepared-statement parameters; and NULL timestamps reach the client as NULL, not 1970-01-01.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from landing.identifiers import validate_identifier

_STARTUP_SECONDS = 30.0
# Short enough that a query fakesnow cannot serve fails the step within minutes instead of the
# connector retrying for ever; long enough for a full rescoring of a large dev warehouse.
LOGIN_TIMEOUT_SECONDS = 10
NETWORK_TIMEOUT_SECONDS = 60


def _positional_values_columns(node: exp.Expression) -> exp.Expression:
    """``$n`` in a SELECT over VALUES -> the n-th VALUES column, as Snowflake reads it."""
    if not (isinstance(node, exp.Parameter) and isinstance(node.this, exp.Literal)):
        return node
    if node.this.is_string or not str(node.this.this).isdigit():
        return node
    select = node.find_ancestor(exp.Select)
    source = select and (select.args.get("from_") or select.args.get("from"))
    if source is None or not isinstance(source.this, exp.Values):
        return node
    # fakesnow's own VALUES transform names them "COLUMN1", "COLUMN2", ...
    return exp.column(f"COLUMN{node.this.this}", quoted=True)


# fakesnow translates a statement with ~80 sqlglot ``transform`` passes, each of which deep-copies
# the whole tree by default: for the feature query that is seconds per statement, nearly all of
# it copying. Within this module's cursor the statement is freshly parsed and owned by the
# cursor, so the passes may rewrite it in place.
_in_place = contextvars.ContextVar("landfall_fakesnow_in_place", default=False)


def _install_in_place_transform() -> None:
    expression_class = exp.Expression
    original = expression_class.transform
    if getattr(original, "landfall_in_place", False):
        return

    def transform(self: Any, fun: Any, *args: Any, copy: bool = True, **kwargs: Any) -> Any:
        return original(self, fun, *args, copy=copy and not _in_place.get(), **kwargs)

    transform.landfall_in_place = True  # type: ignore[attr-defined]
    expression_class.transform = transform  # type: ignore[method-assign]


def _keeping_null_timestamps(to_sf: Any) -> Any:
    """fakesnow's ``to_sf`` (DuckDB arrow -> Snowflake's wire format), with NULL timestamps kept.

    It encodes timestamps as (epoch, fraction) structs without a validity mask, so a NULL
    timestamp reached the client as 1970-01-01; the mask of the source column is put back.
    """
    import pyarrow as pa

    def convert(table: Any, rowtype: Any) -> Any:
        converted = to_sf(table, rowtype)
        columns = []
        for source, column in zip(table.columns, converted.columns, strict=True):
            if pa.types.is_timestamp(source.type) and source.null_count:
                struct = column.combine_chunks()
                column = pa.StructArray.from_arrays(
                    struct.flatten(),
                    fields=list(struct.type),
                    mask=source.combine_chunks().is_null(),
                )
            columns.append(column)
        return pa.Table.from_arrays(columns, schema=converted.schema)

    convert.__wrapped__ = to_sf  # type: ignore[attr-defined]
    return convert


def _temp_macros_sql() -> str:
    from fakesnow import macros

    # creation_sql(catalog) writes `CREATE OR REPLACE MACRO <catalog>._fs_...`; as TEMP macros
    # they live in the connection, not in the warehouse file.
    marker = "LANDFALL_FAKESNOW_CATALOG"
    sql = macros.creation_sql(marker)
    if f"MACRO {marker}." not in sql:
        raise RuntimeError("fakesnow.macros.creation_sql no longer has the expected shape")
    return sql.replace(f"MACRO {marker}.", "TEMP MACRO ")


def _classes() -> tuple[type, type, type]:
    """fakesnow's FakeSnow, connection and cursor classes, specialised for the warehouse."""
    from fakesnow.conn import FakeSnowflakeConnection
    from fakesnow.cursor import FakeSnowflakeCursor
    from fakesnow.instance import FakeSnow
    from snowflake.connector.cursor import DictCursor, SnowflakeCursor

    class Cursor(FakeSnowflakeCursor):
        def _transform(self, expression: Any, params: Any) -> Any:
            token = _in_place.set(True)
            try:
                expression = expression.transform(_positional_values_columns)
                return super()._transform(expression, params)
            finally:
                _in_place.reset(token)

    class Connection(FakeSnowflakeConnection):
        def cursor(self, cursor_class: type = SnowflakeCursor) -> Any:
            return Cursor(
                conn=self, duck_conn=self._duck_conn, use_dict_result=cursor_class == DictCursor
            )

    class Warehouses(FakeSnow):
        """One in-memory DuckDB with each open warehouse file attached as its own database."""

        def __init__(self) -> None:
            super().__init__(create_database_on_connect=False, create_schema_on_connect=False)
            self._lock = threading.Lock()
            self._connections: dict[str, list[Any]] = {}

        def attach(self, path: Path, name: str) -> None:
            literal = "'" + str(path).replace("'", "''") + "'"
            with self._lock:
                if name in self._connections:
                    raise RuntimeError(
                        f"{path} is already open in this process: close its session first"
                    )
                self.duck_conn.execute(f'ATTACH {literal} AS "{name}"')
                self._connections[name] = []

        def detach(self, name: str) -> None:
            with self._lock:
                for conn in self._connections.pop(name, []):
                    conn.close()
                self.duck_conn.execute(f'DETACH DATABASE IF EXISTS "{name}"')

        def connect(
            self,
            database: str | None = None,
            schema: str | None = None,
            nop_regexes: list[str] | None = None,
            **kwargs: Any,
        ) -> Any:
            name = (database or "").upper()
            with self._lock:
                if name not in self._connections:
                    raise ValueError(f"no local warehouse is attached as database {database!r}")
                conn = Connection(
                    self.duck_conn.cursor(),
                    self.results_cache,
                    name,
                    schema,
                    create_database=False,
                    create_schema=False,
                    nop_regexes=nop_regexes,
                    **kwargs,
                )
                conn._duck_conn.execute(_temp_macros_sql())
                self._connections[name].append(conn)
            return conn

    return Warehouses, Connection, Cursor


class _Server:
    """fakesnow's Starlette app served by uvicorn on a thread, over a ``Warehouses`` instance."""

    def __init__(self) -> None:
        import fakesnow.server
        import uvicorn

        _install_in_place_transform()
        warehouses_class, _, _ = _classes()
        self.warehouses = warehouses_class()
        # The app resolves every login against this module global: point it at our instance.
        fakesnow.server.shared_fs = self.warehouses
        if not hasattr(fakesnow.server.to_sf, "__wrapped__"):
            fakesnow.server.to_sf = _keeping_null_timestamps(fakesnow.server.to_sf)
        # A failed statement is raised to the caller; fakesnow's info log adds a line per login.
        logging.getLogger("fakesnow.server").setLevel(logging.WARNING)
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        self._uvicorn = uvicorn.Server(
            uvicorn.Config(fakesnow.server.app, log_level="warning", lifespan="off")
        )
        self._thread = threading.Thread(
            target=self._uvicorn.run,
            kwargs={"sockets": [self._socket]},
            name="landfall-local-snowflake",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + _STARTUP_SECONDS
        while not self._uvicorn.started:
            if not self._thread.is_alive():
                raise RuntimeError("the local Snowflake server (fakesnow) stopped while starting")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the local Snowflake server (fakesnow) did not start in {_STARTUP_SECONDS} s"
                )
            time.sleep(0.02)


_server: _Server | None = None
_server_lock = threading.Lock()


def _running_server() -> _Server:
    global _server
    with _server_lock:
        if _server is None:
            _server = _Server()
        return _server


class LocalSnowflake:
    """A Snowpark session over the DuckDB warehouse at ``path``, until :meth:`close`.

    While open, this process holds the file (DuckDB allows one writing process): open it for
    one step and close it at the end. :meth:`cursor` is a plain DuckDB connection to the same
    attached file, for bookkeeping the warehouse layer does in SQL of its own.
    """

    def __init__(self, path: str | Path) -> None:
        from snowflake.snowpark import Session

        self.path = Path(path)
        # As duckdb.connect would: a missing file is created (an empty warehouse).
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._server = _running_server()
        # Attached under the name DuckDB itself gives the file (its stem): dbt-duckdb's views
        # name their tables with that catalog ("warehouse"."raw"."events"), so any other name
        # leaves every view unresolvable. One open session per file and process.
        self.database = validate_identifier(self.path.stem, "warehouse file name").upper()
        self._server.warehouses.attach(self.path, self.database)
        try:
            self.session = Session.builder.configs(
                {
                    "host": "127.0.0.1",
                    "port": self._server.port,
                    "protocol": "http",
                    "account": "fakesnow",
                    "user": "fake",
                    "password": "snow",
                    "database": self.database,
                    "schema": "MAIN",
                    "login_timeout": LOGIN_TIMEOUT_SECONDS,
                    "network_timeout": NETWORK_TIMEOUT_SECONDS,
                    # nothing to probe on loopback: no cloud metadata, no telemetry
                    "platform_detection_timeout_seconds": 0.0,
                    "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
                }
            ).create()
        except BaseException:
            self._server.warehouses.detach(self.database)
            raise
        # Every describe is a round trip through fakesnow's translation: let Snowpark infer
        # the schemas it can instead of asking (a public setting, off by default).
        self.session.reduce_describe_query_enabled = True
        self._closed = False

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with the warehouse attached as :attr:`database`."""
        return self._server.warehouses.duck_conn.cursor()

    def close(self) -> None:
        """End the session and detach the file (releasing DuckDB's lock on it)."""
        if self._closed:
            return
        self._closed = True
        from snowflake.snowpark.exceptions import SnowparkClientException, SnowparkSQLException

        try:
            # fakesnow has no SYSTEM$CANCEL_ALL_QUERIES, so close() reports an error after
            # logging out; Snowpark's exit hook would then try again.
            with contextlib.suppress(SnowparkSQLException, SnowparkClientException):
                self.session.close()
            atexit.unregister(self.session._close_at_exit)
        finally:
            self._server.warehouses.detach(self.database)

    def __enter__(self) -> LocalSnowflake:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
