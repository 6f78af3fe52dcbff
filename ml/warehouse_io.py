"""The one place where the ML layer switches between local DuckDB and Snowflake.

Locally the warehouse is a DuckDB file that a Snowpark local-testing session cannot
reach, so tables travel DuckDB -> rows -> ``session.create_dataframe`` on the way in
and ``DataFrame.to_pandas`` -> DuckDB on the way out. Against Snowflake the same
methods are ``session.table`` and ``DataFrame.write.save_as_table``.

Column names are upper case on every Snowpark DataFrame this class returns (as
Snowflake stores unquoted identifiers) and lower case in DuckDB (as dbt-duckdb
creates them), so model code written against Snowpark works unchanged in both modes.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pyarrow as pa
from snowflake.snowpark import DataFrame, Session
from snowflake.snowpark import functions as F
from snowflake.snowpark.types import (
    BooleanType,
    ByteType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    ShortType,
    StringType,
    StructField,
    StructType,
    TimestampTimeZone,
    TimestampType,
)

from landing.identifiers import validate_identifier

WriteMode = Literal["overwrite", "append", "upsert"]

_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")

_DUCKDB_TO_SNOWPARK: dict[str, DataType] = {
    "TINYINT": LongType(),
    "SMALLINT": LongType(),
    "INTEGER": LongType(),
    "BIGINT": LongType(),
    "UTINYINT": LongType(),
    "USMALLINT": LongType(),
    "UINTEGER": LongType(),
    "FLOAT": DoubleType(),
    "DOUBLE": DoubleType(),
    "VARCHAR": StringType(),
    "BOOLEAN": BooleanType(),
    "DATE": DateType(),
    "TIMESTAMP": TimestampType(TimestampTimeZone.NTZ),
    "TIMESTAMP_NS": TimestampType(TimestampTimeZone.NTZ),
    "TIMESTAMP_MS": TimestampType(TimestampTimeZone.NTZ),
    "TIMESTAMP_S": TimestampType(TimestampTimeZone.NTZ),
    # Read as naive UTC (see read_table): the emulator has no zone-aware arithmetic.
    "TIMESTAMP WITH TIME ZONE": TimestampType(TimestampTimeZone.NTZ),
}

_local_functions_registered = False
_local_functions_lock = threading.Lock()


def _quote_duckdb(name: str) -> str:
    return '"' + validate_identifier(name).lower() + '"'


def _register_local_testing_functions() -> None:
    """Teach the Snowpark local emulator the functions the models use but it lacks.

    Snowflake has EXP and FLOOR natively; the 1.56 local-testing emulator raises
    NotImplementedError for them. ``snowflake.snowpark.mock.patch`` is the documented
    extension point and only affects local-testing sessions.
    """
    global _local_functions_registered
    with _local_functions_lock:
        if _local_functions_registered:
            return
        from snowflake.snowpark.mock import patch
        from snowflake.snowpark.mock._snowflake_data_type import ColumnEmulator

        # Vectorised over the column (NULL -> NaN -> NULL); a per-row Python call costs
        # seconds per million rows.
        def _elementwise(ufunc: Any) -> Any:
            def apply(column: Any) -> Any:
                values = ufunc(column.astype("float64").to_numpy(na_value=np.nan))
                result = ColumnEmulator(data=values, index=column.index, dtype=object)
                result[np.isnan(values)] = None
                result.sf_type = column.sf_type
                return result

            return apply

        patch("exp")(_elementwise(np.exp))
        patch("floor")(_elementwise(np.floor))

        _local_functions_registered = True


def _snowpark_type(duckdb_type: str) -> DataType:
    match = _DECIMAL.fullmatch(duckdb_type)
    if match:
        return DecimalType(int(match.group(1)), int(match.group(2)))
    try:
        return _DUCKDB_TO_SNOWPARK[duckdb_type]
    except KeyError:
        raise TypeError(f"DuckDB type {duckdb_type} has no Snowpark mapping here") from None


def _duckdb_type(data_type: DataType) -> str:
    if isinstance(data_type, LongType | IntegerType | ShortType | ByteType):
        return "BIGINT"
    if isinstance(data_type, DoubleType | FloatType):
        return "DOUBLE"
    if isinstance(data_type, DecimalType):
        return f"DECIMAL({data_type.precision}, {data_type.scale})"
    if isinstance(data_type, StringType):
        return "VARCHAR"
    if isinstance(data_type, BooleanType):
        return "BOOLEAN"
    if isinstance(data_type, DateType):
        return "DATE"
    if isinstance(data_type, TimestampType):
        if data_type.tz in (TimestampTimeZone.TZ, TimestampTimeZone.LTZ):
            return "TIMESTAMPTZ"
        return "TIMESTAMP"
    raise TypeError(f"Snowpark type {data_type!r} has no DuckDB mapping here")


def _column_name(field: StructField) -> str:
    # Snowpark reports unquoted names upper case and wraps anything else in quotes.
    return validate_identifier(field.name.strip('"')).lower()


class SnowparkWarehouse:
    """Read and write warehouse tables as Snowpark DataFrames, locally or on Snowflake.

    Build it with :meth:`local` (DuckDB file + Snowpark local testing) or
    :meth:`snowflake` (a real Snowpark session). DuckDB connections are opened per
    call and closed before returning, because DuckDB allows one writing process.
    """

    def __init__(self, session: Session, duckdb_path: Path | None = None) -> None:
        self._session = session
        self._duckdb_path = duckdb_path
        self._owns_session = False

    @classmethod
    def local(
        cls, duckdb_path: str | os.PathLike[str], session: Session | None = None
    ) -> SnowparkWarehouse:
        """Local mode: tables live in ``duckdb_path``; compute runs in Snowpark local testing.

        Pass ``session`` to reuse an existing local-testing session (they take seconds
        to start); otherwise one is created and closed by :meth:`close`.
        """
        _register_local_testing_functions()
        owns = session is None
        if session is None:
            session = Session.builder.config("local_testing", True).create()
        warehouse = cls(session, Path(duckdb_path))
        warehouse._owns_session = owns
        return warehouse

    @classmethod
    def snowflake(cls, session: Session) -> SnowparkWarehouse:
        """Snowflake mode: tables are read and written through ``session``."""
        return cls(session, None)

    @property
    def session(self) -> Session:
        return self._session

    @property
    def is_local(self) -> bool:
        return self._duckdb_path is not None

    def read_table(
        self, schema: str, table: str, columns: tuple[str, ...] | None = None
    ) -> DataFrame:
        """Return ``schema.table`` as a Snowpark DataFrame with upper-case column names,
        only ``columns`` if given (locally that is all that travels into the session).

        Locally, TIMESTAMP WITH TIME ZONE values arrive as naive UTC timestamps.
        """
        validate_identifier(schema)
        validate_identifier(table)
        for column in columns or ():
            validate_identifier(column)
        if self._duckdb_path is None:
            df = self._session.table([schema.upper(), table.upper()])
            return df.select(*[c.upper() for c in columns]) if columns else df

        # Same configuration as every other in-run connection: DuckDB refuses a read-only
        # connection to a file this process already has open read-write (e.g. dlt's).
        with duckdb.connect(str(self._duckdb_path)) as con:
            # con.sql, not con.table: dbt builds the staging layer as views.
            relation = con.sql(f"SELECT * FROM {_quote_duckdb(schema)}.{_quote_duckdb(table)}")
            if columns:
                relation = relation.project(", ".join(_quote_duckdb(c) for c in columns))
            columns = tuple(relation.columns)
            types = [str(t) for t in relation.types]
            if "TIMESTAMP WITH TIME ZONE" in types:
                relation = relation.project(
                    ", ".join(
                        f"timezone('UTC', {_quote_duckdb(c)}) AS {_quote_duckdb(c)}"
                        if t == "TIMESTAMP WITH TIME ZONE"
                        else _quote_duckdb(c)
                        for c, t in zip(columns, types, strict=True)
                    )
                )
            rows = relation.fetchall()
        fields = [
            StructField(validate_identifier(name).upper(), _snowpark_type(type_), nullable=True)
            for name, type_ in zip(columns, types, strict=True)
        ]
        # Explicit schema + Python rows: pandas frames from DuckDB carry NaN/pd.NA for
        # NULLs, which local testing either rejects or treats as non-null floats.
        return self._session.create_dataframe(rows, schema=StructType(fields))

    def has_table(self, schema: str, table: str) -> bool:
        """Whether ``schema.table`` exists (a table or a view)."""
        validate_identifier(schema)
        validate_identifier(table)
        if self._duckdb_path is None:
            from snowflake.snowpark.exceptions import SnowparkSQLException

            try:
                self._session.table([schema.upper(), table.upper()]).columns  # noqa: B018
            except SnowparkSQLException:
                return False
            return True
        if not self._duckdb_path.exists():
            return False
        with duckdb.connect(str(self._duckdb_path)) as con:
            found = con.execute(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema = ? AND table_name = ?",
                [schema.lower(), table.lower()],
            ).fetchone()
        return bool(found and found[0])

    def write_table(
        self,
        df: DataFrame,
        schema: str,
        table: str,
        mode: WriteMode = "overwrite",
        keys: tuple[str, ...] = (),
    ) -> None:
        """Write ``df`` to ``schema.table``; ``overwrite`` replaces, ``append`` inserts by name,
        ``upsert`` replaces the rows whose ``keys`` match and inserts the rest (never duplicates).

        Locally the schema is created if missing and column types follow ``df.schema``.
        On Snowflake the schema must already exist.
        """
        validate_identifier(schema)
        validate_identifier(table)
        if mode not in ("overwrite", "append", "upsert"):
            raise ValueError(f"mode must be 'overwrite', 'append' or 'upsert', not {mode!r}")
        if mode == "upsert" and not keys:
            raise ValueError("upsert needs the key columns")
        for key in keys:
            validate_identifier(key)
        if self._duckdb_path is None:
            target = [schema.upper(), table.upper()]
            if mode == "upsert":
                self._merge_snowflake(df, target, keys)
            elif mode == "append" and self.has_table(schema, table):
                df.write.save_as_table(target, mode="append", column_order="name")
            elif mode == "append":
                # the first append creates the table from the frame (a plain CREATE TABLE AS);
                # Snowpark's append to a missing table probes it in a way fakesnow refuses
                df.write.save_as_table(target, mode="errorifexists")
            else:
                df.write.save_as_table(target, mode="overwrite")
            return
        self._write_duckdb(df, schema, table, mode, keys)

    def _merge_snowflake(self, df: DataFrame, target: list[str], keys: tuple[str, ...]) -> None:
        from snowflake.snowpark.exceptions import SnowparkSQLException

        try:
            existing = self._session.table(target)
            existing.columns  # noqa: B018 - raises when the table does not exist yet
        except SnowparkSQLException:
            df.write.save_as_table(target, mode="overwrite")
            return
        source = df.alias("incoming")
        join = None
        for key in keys:
            clause = existing[key.upper()] == source[key.upper()]
            join = clause if join is None else join & clause
        values = {c: source[c] for c in df.columns}
        existing.merge(
            source,
            join,
            [F.when_matched().update(values), F.when_not_matched().insert(values)],
        )

    def close(self) -> None:
        """Close the Snowpark session if this object created it."""
        if self._owns_session:
            self._session.close()
            self._owns_session = False

    def __enter__(self) -> SnowparkWarehouse:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write_duckdb(
        self, df: DataFrame, schema: str, table: str, mode: WriteMode, keys: tuple[str, ...] = ()
    ) -> None:
        assert self._duckdb_path is not None
        # The emulator executes the whole plan for .schema and again for .to_pandas; caching
        # it first executes it once.
        df = df.cache_result()
        fields = df.schema.fields
        names = [_column_name(f) for f in fields]
        pdf = df.to_pandas()
        pdf.columns = names
        # Arrow turns pandas NaN/NaT into NULL, which DuckDB's pandas scan would not.
        incoming = pa.Table.from_pandas(pdf, preserve_index=False)
        select_list = ", ".join(
            f'CAST("{name}" AS {_duckdb_type(f.datatype)}) AS "{name}"'
            for name, f in zip(names, fields, strict=True)
        )
        target = f"{_quote_duckdb(schema)}.{_quote_duckdb(table)}"
        self._duckdb_path.parent.mkdir(parents=True, exist_ok=True)
        with duckdb.connect(str(self._duckdb_path)) as con:
            con.register("landfall_incoming", incoming)
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote_duckdb(schema)}")
                if mode == "overwrite":
                    con.execute(
                        f"CREATE OR REPLACE TABLE {target} AS "
                        f"SELECT {select_list} FROM landfall_incoming"
                    )
                else:
                    con.execute(
                        f"CREATE TABLE IF NOT EXISTS {target} AS "
                        f"SELECT {select_list} FROM landfall_incoming WHERE false"
                    )
                    if mode == "upsert":
                        matches = " AND ".join(
                            f"t.{_quote_duckdb(k.lower())} = i.{_quote_duckdb(k.lower())}"
                            for k in keys
                        )
                        con.execute(
                            f"DELETE FROM {target} AS t USING landfall_incoming AS i "
                            f"WHERE {matches}"
                        )
                    con.execute(
                        f"INSERT INTO {target} BY NAME SELECT {select_list} FROM landfall_incoming"
                    )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            finally:
                con.unregister("landfall_incoming")
