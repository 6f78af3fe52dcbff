"""The one place where the ML layer switches between local DuckDB and Snowflake.

Locally the warehouse is a DuckDB file and the session a real Snowpark ``Session`` on a fakesnow
server over that file (``ml.local_snowflake``): DataFrames compile to the SQL Snowpark generates
for Snowflake, which fakesnow translates and DuckDB runs where the data is. Reads are
``session.table``; a write runs ``INSERT ... SELECT <the frame's query>`` through the session
(append: into the table; overwrite and upsert: into a staging table that one DuckDB transaction
renames or merges into place), so no rows leave DuckDB. Against Snowflake the same methods are
``session.table`` and ``DataFrame.write.save_as_table``.

Column names are upper case on every Snowpark DataFrame this class returns (as Snowflake
stores unquoted identifiers) and lower case in DuckDB (as dbt-duckdb creates them), so model
code written against Snowpark works unchanged in both modes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

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
    TimestampTimeZone,
    TimestampType,
)

from landing.identifiers import validate_identifier

if TYPE_CHECKING:
    from ml.local_snowflake import LocalSnowflake

WriteMode = Literal["overwrite", "append", "upsert"]


def _quote_duckdb(name: str) -> str:
    return '"' + validate_identifier(name).lower() + '"'


# Each warehouse's spelling of the Snowpark types the ML tables use.
_TYPE_NAMES = {
    "duckdb": {
        "integer": "BIGINT",
        "float": "DOUBLE",
        "decimal": "DECIMAL({precision}, {scale})",
        "string": "VARCHAR",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMP",
        "timestamp_tz": "TIMESTAMPTZ",
        "timestamp_ltz": "TIMESTAMPTZ",
    },
    "snowflake": {
        "integer": "NUMBER(38,0)",
        "float": "FLOAT",
        "decimal": "NUMBER({precision},{scale})",
        "string": "VARCHAR",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMP_NTZ",
        "timestamp_tz": "TIMESTAMP_TZ",
        "timestamp_ltz": "TIMESTAMP_LTZ",
    },
}


def _sql_type(data_type: DataType, warehouse: Literal["duckdb", "snowflake"]) -> str:
    names = _TYPE_NAMES[warehouse]
    if isinstance(data_type, LongType | IntegerType | ShortType | ByteType):
        return names["integer"]
    if isinstance(data_type, DoubleType | FloatType):
        return names["float"]
    if isinstance(data_type, DecimalType):
        return names["decimal"].format(precision=data_type.precision, scale=data_type.scale)
    if isinstance(data_type, StringType):
        return names["string"]
    if isinstance(data_type, BooleanType):
        return names["boolean"]
    if isinstance(data_type, DateType):
        return names["date"]
    if isinstance(data_type, TimestampType):
        if data_type.tz == TimestampTimeZone.TZ:
            return names["timestamp_tz"]
        if data_type.tz == TimestampTimeZone.LTZ:
            return names["timestamp_ltz"]
        return names["timestamp"]
    raise TypeError(f"Snowpark type {data_type!r} has no {warehouse} mapping here")


def _single_query(df: DataFrame) -> str:
    """The one SELECT Snowpark generates for ``df`` (its public ``queries``)."""
    queries = df.queries
    if len(queries["queries"]) != 1 or queries["post_actions"]:
        raise NotImplementedError(
            "the local warehouse writes frames that compile to one query; this one needs "
            f"{len(queries['queries'])} plus {len(queries['post_actions'])} clean-up step(s) "
            "(e.g. create_dataframe of many local rows, which Snowpark stages in a temporary table)"
        )
    return queries["queries"][0]


def _column_name(field: StructField) -> str:
    # Snowpark reports unquoted names upper case and wraps anything else in quotes.
    return validate_identifier(field.name.strip('"')).lower()


class SnowparkWarehouse:
    """Read and write warehouse tables as Snowpark DataFrames, locally or on Snowflake.

    Build it with :meth:`local` (the DuckDB file through ``ml.local_snowflake``) or
    :meth:`snowflake` (a real Snowflake session). A local warehouse holds its file until
    :meth:`close` (DuckDB allows one writing process): open it for one step.
    """

    def __init__(self, session: Session, local: LocalSnowflake | None = None) -> None:
        self._session = session
        self._local = local

    @classmethod
    def local(cls, duckdb_path: str | os.PathLike[str]) -> SnowparkWarehouse:
        """Local mode: tables live in ``duckdb_path`` and Snowpark's SQL runs on them there.

        :meth:`close` ends the session and releases the file.
        """
        from ml.local_snowflake import LocalSnowflake

        local = LocalSnowflake(Path(duckdb_path))
        return cls(local.session, local)

    @classmethod
    def snowflake(cls, session: Session) -> SnowparkWarehouse:
        """Snowflake mode: tables are read and written through ``session``."""
        return cls(session, None)

    @property
    def session(self) -> Session:
        return self._session

    @property
    def is_local(self) -> bool:
        return self._local is not None

    def read_table(
        self, schema: str, table: str, columns: tuple[str, ...] | None = None
    ) -> DataFrame:
        """Return ``schema.table`` as a Snowpark DataFrame with upper-case column names,
        only ``columns`` if given."""
        validate_identifier(schema)
        validate_identifier(table)
        for column in columns or ():
            validate_identifier(column)
        if self._local is None:
            df = self._session.table([schema.upper(), table.upper()])
            return df.select(*[c.upper() for c in columns]) if columns else df

        # dbt-duckdb names columns in lower case; DuckDB reports them as stored, which
        # Snowpark would treat as quoted lower-case names. Alias each to its upper-case name.
        stored = self._local_columns(schema, table)
        if not stored:
            raise LookupError(
                f"table {schema}.{table} does not exist in the local warehouse {self._local.path}"
            )
        by_upper = {validate_identifier(name).upper(): name for name in stored}
        wanted = [c.upper() for c in columns] if columns else list(by_upper)
        missing = [c for c in wanted if c not in by_upper]
        if missing:
            raise LookupError(
                f"table {schema}.{table} in the local warehouse {self._local.path} has no "
                f"column(s) {', '.join(missing)}"
            )
        df = self._session.table([schema.upper(), table.upper()])
        return df.select([F.col(f'"{by_upper[c]}"').alias(c) for c in wanted])

    def has_table(self, schema: str, table: str) -> bool:
        """Whether ``schema.table`` exists (a table or a view)."""
        validate_identifier(schema)
        validate_identifier(table)
        if self._local is None:
            # information_schema, not a describe of the table: the stand-in answers a describe
            # of a missing table with HTTP 500 (retried for minutes), an account with an error.
            # Views too (fakesnow lists them only in information_schema.views). Both names are
            # validated identifiers above, so they are safe as literals.
            where = f"table_schema = '{schema.upper()}' AND table_name = '{table.upper()}'"
            found = self._session.sql(
                f"SELECT 1 FROM information_schema.tables WHERE {where} "
                f"UNION ALL SELECT 1 FROM information_schema.views WHERE {where}"
            ).collect()
            return bool(found)
        return bool(self._local_columns(schema, table))

    def _local_columns(self, schema: str, table: str) -> list[str]:
        assert self._local is not None
        with self._local.cursor() as con:
            rows = con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_catalog = ? "
                "AND lower(table_schema) = ? AND lower(table_name) = ? ORDER BY ordinal_position",
                [self._local.database, schema.lower(), table.lower()],
            ).fetchall()
        return [row[0] for row in rows]

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
        if self._local is None:
            self._write_snowflake(df, schema, table, mode, keys)
            return
        self._write_local(df, schema, table, mode, keys)

    def _write_snowflake(
        self, df: DataFrame, schema: str, table: str, mode: WriteMode, keys: tuple[str, ...]
    ) -> None:
        """The frame's query runs once, as `INSERT … SELECT` into a staging table created from
        the frame's schema; the table is then replaced (one CREATE OR REPLACE … AS SELECT of
        the staging table, atomic on Snowflake), appended to or merged into. Not Snowpark's
        `save_as_table`: the fakesnow stand-in mistranslates a CREATE TABLE AS of the feature
        query (`datediff('second', …)`), and one write path serves the account and the
        stand-in alike."""
        fields = df.schema.fields
        names = [_column_name(f).upper() for f in fields]
        quoted = ", ".join(f'"{n}"' for n in names)
        columns = ", ".join(
            f'"{n}" {_sql_type(f.datatype, "snowflake")}'
            for n, f in zip(names, fields, strict=True)
        )
        schema_sql = f'"{schema.upper()}"'
        target = f'{schema_sql}."{table.upper()}"'
        staging = f'{schema_sql}."{table.upper()}__LANDFALL_INCOMING"'
        run = self._session.sql
        queries = df.queries
        run(f"CREATE OR REPLACE TABLE {staging} ({columns})").collect()
        try:
            for setup in queries["queries"][:-1]:  # e.g. a temporary table of local rows
                run(setup).collect()
            try:
                select = queries["queries"][-1]
                run(f"INSERT INTO {staging} ({quoted}) SELECT {quoted} FROM ({select})").collect()
            finally:
                for cleanup in queries["post_actions"]:
                    run(cleanup).collect()
            exists = self.has_table(schema, table)
            if mode == "overwrite" or not exists:
                run(f"CREATE OR REPLACE TABLE {target} AS SELECT {quoted} FROM {staging}").collect()
            elif mode == "append":
                run(f"INSERT INTO {target} ({quoted}) SELECT {quoted} FROM {staging}").collect()
            else:
                # an upsert: the staged rows replace the rows their keys match, the rest insert
                on = " AND ".join(f't."{k.upper()}" = i."{k.upper()}"' for k in keys)
                update = ", ".join(f'"{n}" = i."{n}"' for n in names)
                values = ", ".join(f'i."{n}"' for n in names)
                run(
                    f"MERGE INTO {target} AS t USING {staging} AS i ON {on} "
                    f"WHEN MATCHED THEN UPDATE SET {update} "
                    f"WHEN NOT MATCHED THEN INSERT ({quoted}) VALUES ({values})"
                ).collect()
        finally:
            run(f"DROP TABLE IF EXISTS {staging}").collect()

    def close(self) -> None:
        """Locally: end the session and release the warehouse file. On Snowflake the caller
        owns the session."""
        if self._local is not None:
            self._local.close()

    def __enter__(self) -> SnowparkWarehouse:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write_local(
        self, df: DataFrame, schema: str, table: str, mode: WriteMode, keys: tuple[str, ...] = ()
    ) -> None:
        assert self._local is not None
        fields = df.schema.fields
        names = [_column_name(f) for f in fields]
        columns = ", ".join(
            f'"{name}" {_sql_type(f.datatype, "duckdb")}'
            for name, f in zip(names, fields, strict=True)
        )
        database = f'"{self._local.database}"'
        staging_name = f"{table.lower()}__landfall_incoming"
        staging = f"{database}.{_quote_duckdb(schema)}.{_quote_duckdb(staging_name)}"
        target = f"{database}.{_quote_duckdb(schema)}.{_quote_duckdb(table)}"
        select_list = ", ".join(f'"{name}"' for name in names)
        query = _single_query(df)

        def insert(into: str) -> str:
            # not str.format: the query's literals may hold braces (the registry's JSON)
            return f"INSERT INTO {into} ({select_list}) SELECT {select_list} FROM ({query})"

        with self._local.cursor() as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {database}.{_quote_duckdb(schema)}")
            if mode == "append":
                # One INSERT is atomic on its own: straight into the table.
                con.execute(f"CREATE TABLE IF NOT EXISTS {target} ({columns})")
                self._session.sql(insert(target)).collect()
                return
            con.execute(f"CREATE OR REPLACE TABLE {staging} ({columns})")
            try:
                # The frame's query runs as Snowpark generates it for Snowflake, translated by
                # fakesnow and run by DuckDB into the staging table: no rows leave DuckDB.
                self._session.sql(insert(staging)).collect()
                con.execute("BEGIN TRANSACTION")
                try:
                    if mode == "overwrite":
                        # A rename, not a copy: the staging table becomes the table.
                        con.execute(f"DROP TABLE IF EXISTS {target}")
                        con.execute(f"ALTER TABLE {staging} RENAME TO {_quote_duckdb(table)}")
                    else:
                        con.execute(f"CREATE TABLE IF NOT EXISTS {target} ({columns})")
                        matches = " AND ".join(
                            f"t.{_quote_duckdb(k)} = i.{_quote_duckdb(k)}" for k in keys
                        )
                        con.execute(
                            f"DELETE FROM {target} AS t USING {staging} AS i WHERE {matches}"
                        )
                        con.execute(
                            f"INSERT INTO {target} BY NAME SELECT {select_list} FROM {staging}"
                        )
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
            finally:
                con.execute(f"DROP TABLE IF EXISTS {staging}")
