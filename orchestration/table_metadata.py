"""Column schemas read from the warehouse after a write, as Dagster `TableSchema` metadata, so
the UI shows every table's columns and types."""

import dagster as dg
import duckdb


def column_schema(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> dg.TableSchema:
    rows = con.execute(
        """SELECT column_name, data_type FROM information_schema.columns
           WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position""",
        [schema, table],
    ).fetchall()
    return dg.TableSchema(columns=[dg.TableColumn(name, str(kind)) for name, kind in rows])
