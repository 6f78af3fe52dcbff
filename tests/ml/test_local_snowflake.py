"""The local Snowflake route: a real Snowpark session on fakesnow over the DuckDB warehouse.

One test per private name of fakesnow that ml/local_snowflake.py relies on, so an upgrade that
moves one fails here with its name; then the route itself: scores equal to plain DuckDB SQL to
1e-9, and the file released on close.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from snowflake.snowpark.types import DoubleType, StringType, StructField, StructType

from bench.scoring import write_features
from ml.local_snowflake import LocalSnowflake, _classes, _keeping_null_timestamps
from ml.scoring import DEFAULT_MODEL, score
from ml.warehouse_io import SnowparkWarehouse

SCORED_AT = datetime(2024, 6, 1, 12)


# --- fakesnow's private names, one test each -------------------------------------------------


def test_fakesnow_server_module_has_the_app_and_shared_instance() -> None:
    import fakesnow.server
    from fakesnow.instance import FakeSnow

    assert hasattr(fakesnow.server, "app")
    assert isinstance(fakesnow.server.shared_fs, FakeSnow)  # replaced by ours once started
    assert callable(fakesnow.server.to_sf)


def test_fakesnow_instance_takes_the_create_flags_and_has_duck_conn() -> None:
    from fakesnow.instance import FakeSnow

    params = inspect.signature(FakeSnow.__init__).parameters
    assert {"create_database_on_connect", "create_schema_on_connect"} <= set(params)
    assert isinstance(FakeSnow().duck_conn, duckdb.DuckDBPyConnection)


def test_fakesnow_connection_constructor_and_duck_conn() -> None:
    from fakesnow.conn import FakeSnowflakeConnection

    params = list(inspect.signature(FakeSnowflakeConnection.__init__).parameters)
    assert params[:7] == [
        "self",
        "duck_conn",
        "results_cache",
        "database",
        "schema",
        "create_database",
        "create_schema",
    ]
    conn = FakeSnowflakeConnection(duckdb.connect(), {}, None, None, False, False)
    assert isinstance(conn._duck_conn, duckdb.DuckDBPyConnection)


def test_fakesnow_cursor_transform_hook() -> None:
    from fakesnow.cursor import FakeSnowflakeCursor

    assert list(inspect.signature(FakeSnowflakeCursor._transform).parameters) == [
        "self",
        "expression",
        "params",
    ]
    assert {"conn", "duck_conn", "use_dict_result"} <= set(
        inspect.signature(FakeSnowflakeCursor.__init__).parameters
    )


def test_fakesnow_macros_creation_sql_names_the_catalog() -> None:
    from fakesnow import macros

    assert "MACRO SOME_CATALOG._fs_to_timestamp" in macros.creation_sql("SOME_CATALOG")


def test_snowpark_session_close_at_exit_hook(tmp_path: Path) -> None:
    with LocalSnowflake(tmp_path / "w.duckdb") as local:
        # LocalSnowflake.close unregisters this bound method from atexit.
        hook = local.session._close_at_exit
        assert inspect.ismethod(hook) and hook.__self__ is local.session


# --- the gaps closed ------------------------------------------------------------------------


def test_null_timestamps_stay_null_on_the_wire() -> None:
    from fakesnow.arrow import to_sf
    from fakesnow.rowtype import describe_as_rowtype

    con = duckdb.connect()
    query = "SELECT * FROM (VALUES (TIMESTAMP '2024-06-01 00:00:00'), (NULL)) AS t(ts)"
    table = con.execute(query).to_arrow_table()
    rowtype = describe_as_rowtype(con.execute(f"DESCRIBE {query}").fetchall())
    assert to_sf(table, rowtype).column(0).null_count == 0  # fakesnow's own: the gap
    fixed = _keeping_null_timestamps(to_sf)(table, rowtype).column(0)
    assert fixed.null_count == 1 and fixed.is_valid().to_pylist() == [True, False]
    assert fixed.type == to_sf(table, rowtype).column(0).type


def test_create_dataframe_of_local_rows_and_null_timestamps(tmp_path: Path) -> None:
    with LocalSnowflake(tmp_path / "w.duckdb") as local:
        schema = StructType([StructField("N", StringType()), StructField("V", DoubleType())])
        rows = local.session.create_dataframe([("a", 1.0), ("b", None)], schema=schema).collect()
        assert [(r["N"], r["V"]) for r in rows] == [("a", 1.0), ("b", None)]
        latest = local.session.sql(
            "SELECT max(ts) AS m FROM (SELECT CURRENT_TIMESTAMP()::TIMESTAMP_NTZ AS ts) WHERE false"
        ).collect()
        assert latest[0]["M"] is None


def test_fakesnow_macros_stay_out_of_the_warehouse_file(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with LocalSnowflake(path) as local:
        # fakesnow translates Snowflake's TO_TIMESTAMP to its macro: it must resolve.
        assert local.session.sql("SELECT TO_TIMESTAMP('2024-06-01') AS t").collect()[0]["T"]
    with duckdb.connect(str(path), read_only=True) as con:
        names = con.execute(
            "SELECT function_name FROM duckdb_functions() WHERE function_name LIKE '_fs%' "
            "AND NOT internal"
        ).fetchall()
        schemas = con.execute("SELECT schema_name FROM duckdb_schemas() WHERE NOT internal")
        assert names == []
        assert "_fs_information_schema" not in {row[0] for row in schemas.fetchall()}


def test_positional_values_columns_only_over_values() -> None:
    from sqlglot import parse_one

    from ml.local_snowflake import _positional_values_columns

    over_values = parse_one("SELECT $1 AS A, $2 AS B FROM VALUES (1, 2)", read="snowflake")
    assert (
        over_values.transform(_positional_values_columns).sql(dialect="snowflake")
        == 'SELECT "COLUMN1" AS A, "COLUMN2" AS B FROM (VALUES (1, 2))'
    )
    elsewhere = parse_one("SELECT $1 FROM t", read="snowflake")
    assert elsewhere.transform(_positional_values_columns) == elsewhere


def test_classes_are_fakesnow_subclasses() -> None:
    from fakesnow.conn import FakeSnowflakeConnection
    from fakesnow.cursor import FakeSnowflakeCursor
    from fakesnow.instance import FakeSnow

    warehouses, connection, cursor = _classes()
    assert issubclass(warehouses, FakeSnow)
    assert issubclass(connection, FakeSnowflakeConnection)
    assert issubclass(cursor, FakeSnowflakeCursor)


# --- the route ------------------------------------------------------------------------------


def test_scores_equal_plain_duckdb_sql_to_1e9(tmp_path: Path) -> None:
    """The Snowpark scoring code through fakesnow gives the formula's scores as plain SQL does."""
    path = tmp_path / "w.duckdb"
    customers = 5_000
    write_features(path, customers)  # the scoring benchmark's table
    with SnowparkWarehouse.local(path) as warehouse:
        scored = score(warehouse.read_table("features", "churn"), DEFAULT_MODEL, SCORED_AT)
        warehouse.write_table(scored, "ml", "customer_scores")
    model = DEFAULT_MODEL
    logit = " + ".join(
        f"{model.weights[f]!r} * ({f.lower()} - {model.means[f]!r}) / {model.scales[f]!r}"
        for f in model.features
    )
    with duckdb.connect(str(path), read_only=True) as con:
        rows, worst, versions = con.execute(
            f"""
            SELECT count(*), max(abs(s.score - q.score)), count(DISTINCT s.model_version)
            FROM ml.customer_scores s JOIN (
                SELECT customer_id,
                       1.0 / (1.0 + exp(-least(greatest({model.intercept!r} + {logit}, -50), 50)))
                           AS score
                FROM features.churn
            ) q USING (customer_id)
            """
        ).fetchone()
    assert rows == customers
    assert worst < 1e-9
    assert versions == 1


def test_the_file_is_held_while_open_and_released_on_close(
    tmp_path: Path, seed_marts: Callable[[Path], None]
) -> None:
    path = tmp_path / "w.duckdb"
    seed_marts(path)
    warehouse = SnowparkWarehouse.local(path)
    try:
        assert warehouse.has_table("marts", "fct_orders")
        assert not warehouse.has_table("marts", "nope")
        with pytest.raises(LookupError, match=r"marts\.nope does not exist"):
            warehouse.read_table("marts", "nope")
        with pytest.raises(LookupError, match="no column"):
            warehouse.read_table("marts", "fct_orders", columns=("SHOE_SIZE",))
        # DuckDB refuses a second handle on an attached file within the process.
        with pytest.raises(duckdb.Error), duckdb.connect(str(path)):
            pass
    finally:
        warehouse.close()
    with duckdb.connect(str(path)) as con:
        assert con.execute("SELECT count(*) FROM marts.fct_orders").fetchone() == (8,)


def test_dbt_views_resolve_their_catalog(tmp_path: Path) -> None:
    """dbt-duckdb's views name their tables with the file's own catalog
    ("warehouse"."raw"."orders"): the session attaches the file under that name, so reading a
    staging view through Snowpark works as on Snowflake."""
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA raw")
        con.execute("CREATE SCHEMA staging")
        con.execute("CREATE TABLE raw.orders AS SELECT 1 AS order_id, 2.5 AS amount")
        con.execute('CREATE VIEW staging.stg_orders AS SELECT * FROM "warehouse"."raw"."orders"')
    with SnowparkWarehouse.local(path) as wh:
        rows = wh.read_table("staging", "stg_orders").collect()
        with pytest.raises(RuntimeError, match="already open in this process"):
            SnowparkWarehouse.local(path)
    assert [(r["ORDER_ID"], float(r["AMOUNT"])) for r in rows] == [(1, 2.5)]
