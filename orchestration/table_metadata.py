"""Column schemas read from the warehouse after a write, as Dagster `TableSchema` metadata, so
the UI shows every table's columns and types."""

import dagster as dg
import duckdb

from landing.raw_load import table_columns


def column_schema(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> dg.TableSchema:
    columns = table_columns(con, schema, table)
    return dg.TableSchema(columns=[dg.TableColumn(n, str(t)) for n, t in columns.items()])
