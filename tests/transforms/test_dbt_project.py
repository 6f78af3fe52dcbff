"""The dbt project in transforms/: built end to end on a small hand-made DuckDB warehouse.

Everything runs offline: DuckDB for the local target, `dbt parse` only for the Snowflake
(prod) target. dbt writes its target/ and logs/ into pytest's tmp dirs, never into
transforms/.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import duckdb
import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2] / "transforms"

# Raw tables as the ingestion layer writes them (with an extra loader column the
# staging models must not depend on).
RAW_DDL = """
create schema raw;
create table raw.orders (
    order_id bigint, customer_id bigint, order_ts timestamp, amount decimal(24, 6),
    status varchar, _landfall_file varchar, _landfall_etag varchar,
    _landfall_loaded_at timestamp, _sling_loaded_at bigint
);
create table raw.customers (
    customer_id bigint, name varchar, email varchar, country varchar, signup_ts timestamp,
    _landfall_file varchar, _landfall_etag varchar, _landfall_loaded_at timestamp
);
create table raw.events (
    event_id varchar, customer_id bigint, event_ts timestamp with time zone,
    event_type varchar, session__id varchar, session__device__os varchar,
    session__device__browser varchar, _dlt_load_id varchar, _dlt_id varchar,
    _landfall_file varchar, _landfall_etag varchar, _landfall_loaded_at timestamp
);
create table raw.events__items (
    sku varchar, qty bigint, price double, _dlt_parent_id varchar, _dlt_list_idx bigint,
    _dlt_id varchar, _landfall_file varchar, _landfall_etag varchar,
    _landfall_loaded_at timestamp
);
"""

L1, L2, L3 = "2024-06-01 10:00:00", "2024-06-02 10:00:00", "2024-06-03 10:00:00"

ORDERS = [
    # order_id, customer_id, order_ts, amount, status, file, loaded_at
    (101, 1, "2024-05-01 10:00:00", "100.50", "shipped", "orders/o1.csv", L1),
    (101, 1, "2024-05-01 10:00:00", "100.50", "shipped", "orders/o2.csv", L2),  # re-sent
    (102, 1, "2024-05-20 09:00:00", "49.25", "placed", "orders/o1.csv", L1),
    (103, 1, "2024-05-25 08:00:00", "999.00", "cancelled", "orders/o1.csv", L1),
    (201, 2, "2024-05-10 12:00:00", "10.00", "returned", "orders/o1.csv", L1),
    (202, 2, "2024-05-15 12:00:00", "20.00", "placed", "orders/o1.csv", L1),
    (202, 2, "2024-05-15 12:00:00", "25.00", "placed", "orders/o2.csv", L2),  # corrected
    # Same load time in two files: the later file key wins (2.00).
    (204, 2, "2024-05-16 00:00:00", "1.00", "placed", "orders/o3a.csv", L3),
    (204, 2, "2024-05-16 00:00:00", "2.00", "placed", "orders/o3b.csv", L3),
    # Latest order_ts in the data (the reference point), but cancelled.
    (203, 2, "2024-05-31 23:00:00", "5.00", "cancelled", "orders/o2.csv", L2),
    # Customer 9 has not landed yet: relationships test warns, build still passes.
    (901, 9, "2024-05-02 00:00:00", "7.00", "placed", "orders/o1.csv", L1),
]

CUSTOMERS = [
    (1, "Alice", "alice@example.com", "DE", "2024-01-01 00:00:00", "customers/c1.csv", L1),
    (1, "Alice", "alice@example.com", "AT", "2024-01-01 00:00:00", "customers/c2.csv", L2),
    (2, "Bob", "bob@example.com", "FR", "2024-02-01 00:00:00", "customers/c1.csv", L1),
    (3, "Carol", "carol@example.com", "US", "2024-03-01 00:00:00", "customers/c1.csv", L1),
]

EVENTS = [
    # event_id, customer_id, event_type, _dlt_id, file, loaded_at
    ("e1", 1, "page_view", "d1", "events/ev1.jsonl", L1),
    ("e2", 1, "add_to_cart", "d2", "events/ev1.jsonl", L1),
    ("e2", 1, "add_to_cart", "d2b", "events/ev2.jsonl", L2),  # re-landed, new dlt id
    ("e3", 1, "checkout", "d3", "events/ev1.jsonl", L1),
    ("e4", 2, "add_to_cart", "d4", "events/ev1.jsonl", L1),
    ("e5", None, "page_view", "d5", "events/ev1.jsonl", L1),  # anonymous
]

ITEMS = [
    # sku, qty, parent _dlt_id, list idx, _dlt_id, file, loaded_at
    ("A", 2, "d2", 0, "i1", "events/ev1.jsonl", L1),
    ("B", 1, "d2", 1, "i2", "events/ev1.jsonl", L1),
    ("A", 2, "d2b", 0, "i3", "events/ev2.jsonl", L2),
    ("B", 1, "d2b", 1, "i4", "events/ev2.jsonl", L2),
    ("C", 5, "d4", 0, "i5", "events/ev1.jsonl", L1),
]

FEATURE_COLUMNS = [
    "customer_id",
    "country",
    "signup_ts",
    "order_count",
    "total_amount",
    "avg_order_amount",
    "first_order_ts",
    "last_order_ts",
    "days_since_last_order",
    "event_count",
    "page_view_count",
    "add_to_cart_count",
    "checkout_count",
    "cart_items_qty",
]


def _write_raw(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute(RAW_DDL)
        for oid, cid, ts, amount, status, file, loaded in ORDERS:
            con.execute(
                "insert into raw.orders values (?, ?, ?, ?, ?, ?, ?, ?, 0)",
                [oid, cid, ts, Decimal(amount), status, file, f"etag-{file}", loaded],
            )
        for cid, name, email, country, signup, file, loaded in CUSTOMERS:
            con.execute(
                "insert into raw.customers values (?, ?, ?, ?, ?, ?, ?, ?)",
                [cid, name, email, country, signup, file, f"etag-{file}", loaded],
            )
        for eid, cid, etype, dlt_id, file, loaded in EVENTS:
            con.execute(
                "insert into raw.events values "
                "(?, ?, '2024-05-30 12:00:00+00', ?, 's1', 'linux', 'firefox', 'load1', "
                "?, ?, ?, ?)",
                [eid, cid, etype, dlt_id, file, f"etag-{file}", loaded],
            )
        for sku, qty, parent, idx, dlt_id, file, loaded in ITEMS:
            con.execute(
                "insert into raw.events__items values (?, ?, 9.99, ?, ?, ?, ?, ?, ?)",
                [sku, qty, parent, idx, dlt_id, file, f"etag-{file}", loaded],
            )


def _dbt_executable() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    found = str(candidate) if candidate.exists() else shutil.which("dbt")
    if not found:
        pytest.skip("dbt is not installed (transformation dependency group)")
    return found


def _dbt(args: list[str], tmp: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run dbt against transforms/ with target/ and logs/ under tmp."""
    cmd = [
        _dbt_executable(),
        *args,
        "--project-dir",
        str(PROJECT_DIR),
        "--profiles-dir",
        str(PROJECT_DIR),
        "--target-path",
        str(tmp / "target"),
        "--log-path",
        str(tmp / "logs"),
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _base_env() -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SNOWFLAKE_", "DBT_", "LANDFALL_"))
    }
    env.update(DBT_SEND_ANONYMOUS_USAGE_STATS="false", DO_NOT_TRACK="1")
    return env


class Built(NamedTuple):
    tmp: Path
    warehouse: Path
    env: dict[str, str]
    run_results: dict  # of the first `dbt build` (later runs overwrite the file)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    tmp = tmp_path_factory.mktemp("dbt")
    warehouse = tmp / "warehouse.duckdb"
    _write_raw(warehouse)
    env = {**_base_env(), "LANDFALL_WAREHOUSE_PATH": str(warehouse)}
    _dbt(["build"], tmp, env)
    run_results = json.loads((tmp / "target" / "run_results.json").read_text())
    return Built(tmp, warehouse, env, run_results)


def _features(warehouse: Path) -> dict[int, dict]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cur = con.execute("select * from marts.customer_order_features order by customer_id")
        names = [d[0] for d in cur.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def test_features_are_exact_and_deduplicated(built):
    warehouse = built.warehouse
    _assert_expected_features(_features(warehouse))


def _assert_expected_features(features: dict[int, dict]) -> None:
    """Hand-computed expectations for the raw rows above."""
    assert list(next(iter(features.values()))) == FEATURE_COLUMNS
    # Every customer exactly once (the re-landed customer 1 too), orphan customer 9 absent.
    assert sorted(features) == [1, 2, 3]

    alice = features[1]
    # 101 landed twice but counts once; 103 is cancelled.
    assert alice["country"] == "AT"  # the later landed version wins
    assert alice["order_count"] == 2
    assert alice["total_amount"] == pytest.approx(149.75)
    assert isinstance(alice["total_amount"], float)
    assert alice["avg_order_amount"] == pytest.approx(74.875)
    assert alice["first_order_ts"] == datetime(2024, 5, 1, 10)
    assert alice["last_order_ts"] == datetime(2024, 5, 20, 9)
    # Reference point: 2024-05-31 23:00 (latest order_ts, cancelled 203).
    assert alice["days_since_last_order"] == 11
    assert (
        alice["event_count"],
        alice["page_view_count"],
        alice["add_to_cart_count"],
        alice["checkout_count"],
        alice["cart_items_qty"],
    ) == (3, 1, 1, 1, 3)  # e2 re-landed: its items count once

    bob = features[2]
    # 201 (returned, 10) + 202 (corrected to 25) + 204 (tie on load time -> o3b, 2).
    assert bob["order_count"] == 3
    assert bob["total_amount"] == pytest.approx(37.0)
    assert bob["avg_order_amount"] == pytest.approx(37.0 / 3)
    assert bob["last_order_ts"] == datetime(2024, 5, 16)
    assert bob["days_since_last_order"] == 15
    assert (bob["event_count"], bob["add_to_cart_count"], bob["cart_items_qty"]) == (1, 1, 5)

    carol = features[3]  # no orders, no events
    assert carol["order_count"] == 0
    assert carol["total_amount"] == 0.0
    assert carol["avg_order_amount"] is None
    assert carol["last_order_ts"] is None
    assert carol["days_since_last_order"] is None
    assert carol["event_count"] == carol["cart_items_qty"] == 0


# Runs in a subprocess: fakesnow patches the Snowflake connector in-process, so the
# prod target's SQL (dbt-snowflake macros) runs, translated by sqlglot, on DuckDB.
FAKESNOW_SCRIPT = r"""
import pickle, sys
import fakesnow
import snowflake.connector
from dbt.cli.main import dbtRunner

spec = pickle.loads(open(sys.argv[1], "rb").read())
with fakesnow.patch(db_path=spec["db_path"]):
    cur = snowflake.connector.connect(database="LANDFALL", schema="PUBLIC").cursor()
    for sql, params in spec["statements"]:
        cur.execute(sql, params)
    result = dbtRunner().invoke(["build", "--target", "prod", *spec["dbt_args"]])
    if not result.success:
        sys.exit(f"dbt build --target prod failed: {result.exception}")
    cur = snowflake.connector.connect(database="LANDFALL", schema="PUBLIC").cursor()
    cur.execute("select * from marts.customer_order_features order by customer_id")
    names = [d[0].lower() for d in cur.description]
    rows = {row[0]: dict(zip(names, row)) for row in cur.fetchall()}
    open(sys.argv[2], "wb").write(pickle.dumps(rows))
"""


@pytest.mark.slow
def test_prod_sql_builds_on_fakesnow(tmp_path):
    """The Snowflake dialect end to end, offline, with the same expectations as DuckDB."""
    pytest.importorskip("fakesnow")
    statements = [
        (stmt.replace("decimal(24, 6)", "number(24, 6)"), None)
        for stmt in RAW_DDL.split(";")
        if stmt.strip()
    ]
    statements += [
        (
            "insert into raw.orders values (%s, %s, %s, %s, %s, %s, %s, %s, 0)",
            (oid, cid, ts, amount, status, file, f"etag-{file}", loaded),
        )
        for oid, cid, ts, amount, status, file, loaded in ORDERS
    ]
    statements += [
        (
            "insert into raw.customers values (%s, %s, %s, %s, %s, %s, %s, %s)",
            (cid, name, email, country, signup, file, f"etag-{file}", loaded),
        )
        for cid, name, email, country, signup, file, loaded in CUSTOMERS
    ]
    statements += [
        (
            "insert into raw.events values (%s, %s, '2024-05-30 12:00:00+00:00', %s, 's1', "
            "'linux', 'firefox', 'load1', %s, %s, %s, %s)",
            (eid, cid, etype, dlt_id, file, f"etag-{file}", loaded),
        )
        for eid, cid, etype, dlt_id, file, loaded in EVENTS
    ]
    statements += [
        (
            "insert into raw.events__items values (%s, %s, 9.99, %s, %s, %s, %s, %s, %s)",
            (sku, qty, parent, idx, dlt_id, file, f"etag-{file}", loaded),
        )
        for sku, qty, parent, idx, dlt_id, file, loaded in ITEMS
    ]
    (tmp_path / "db").mkdir()
    spec = {
        "db_path": str(tmp_path / "db"),
        "statements": statements,
        "dbt_args": [
            "--project-dir",
            str(PROJECT_DIR),
            "--profiles-dir",
            str(PROJECT_DIR),
            "--target-path",
            str(tmp_path / "target"),
            "--log-path",
            str(tmp_path / "logs"),
        ],
    }
    (tmp_path / "spec.pickle").write_bytes(pickle.dumps(spec))
    env = {
        **_base_env(),
        "SNOWFLAKE_ACCOUNT": "fake",
        "SNOWFLAKE_USER": "fake",
        "SNOWFLAKE_PASSWORD": "fake",
        "SNOWFLAKE_ROLE": "FAKE",
        "SNOWFLAKE_WAREHOUSE": "FAKE",
        "SNOWFLAKE_DATABASE": "LANDFALL",
        "SNOWFLAKE_SCHEMA": "PUBLIC",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            FAKESNOW_SCRIPT,
            str(tmp_path / "spec.pickle"),
            str(tmp_path / "features.pickle"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    _assert_expected_features(pickle.loads((tmp_path / "features.pickle").read_bytes()))


def test_layers_land_in_plain_schemas_with_provenance(built):
    warehouse = built.warehouse
    with duckdb.connect(str(warehouse), read_only=True) as con:
        relations = set(
            con.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_schema in ('staging', 'intermediate', 'marts')"
            ).fetchall()
        )
        orders = con.execute(
            "select order_id, amount, source_file from staging.stg_landing__orders "
            "where order_id in (101, 202, 204) order by order_id"
        ).fetchall()
    assert {
        ("staging", "stg_landing__orders"),
        ("staging", "stg_landing__customers"),
        ("staging", "stg_landing__events"),
        ("staging", "stg_landing__event_items"),
        ("intermediate", "int_customer_orders"),
        ("intermediate", "int_customer_events"),
        ("marts", "customer_order_features"),
        ("marts", "fct_orders"),
    } <= relations
    assert orders == [
        (101, Decimal("100.500000"), "orders/o2.csv"),
        (202, Decimal("25.000000"), "orders/o2.csv"),
        (204, Decimal("2.000000"), "orders/o3b.csv"),
    ]
    # The orphan order (customer 9 not landed yet) only warns.
    statuses = {r["unique_id"]: r["status"] for r in built.run_results["results"]}
    assert [s for uid, s in statuses.items() if "relationships" in uid] == ["warn"]


def test_fct_orders_merges_a_new_file_without_reprocessing_old_ones(built):
    tmp, warehouse, env, _ = built
    with duckdb.connect(str(warehouse)) as con:
        # A sentinel in a row from an already processed file: any rebuild or re-merge of the
        # old files' rows would overwrite it.
        con.execute("update marts.fct_orders set status = 'sentinel' where order_id = 103")
        con.execute(
            "insert into raw.orders values "
            "(102, 1, '2024-05-20 09:00:00', 60.00, 'shipped', 'orders/o4.csv', 'e4', "
            "'2024-06-04 10:00:00', 0), "
            "(301, 3, '2024-06-01 00:00:00', 8.00, 'placed', 'orders/o4.csv', 'e4', "
            "'2024-06-04 10:00:00', 0)"
        )
    _dbt(["build", "--select", "fct_orders"], tmp, env)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select order_id, amount, status, source_file from marts.fct_orders order by order_id"
        ).fetchall()
    by_id = {r[0]: r[1:] for r in rows}
    assert len(rows) == len(by_id) == 9  # 101 102 103 201 202 203 204 901 301
    # the new file's rows: one new order, one corrected order merged on its key
    assert by_id[102] == (Decimal("60.000000"), "shipped", "orders/o4.csv")
    assert by_id[301] == (Decimal("8.000000"), "placed", "orders/o4.csv")
    # the old files' rows were not touched
    assert by_id[103] == (Decimal("999.000000"), "sentinel", "orders/o1.csv")
    assert by_id[101] == (Decimal("100.500000"), "shipped", "orders/o2.csv")
    compiled = tmp / "target" / "compiled" / "landfall" / "models" / "marts" / "fct_orders.sql"
    assert "where loaded_at >=" in compiled.read_text()  # really ran incrementally


def test_prod_target_parses_offline(tmp_path):
    env = {
        **_base_env(),
        "SNOWFLAKE_ACCOUNT": "dummy-account",
        "SNOWFLAKE_USER": "dummy_user",
        "SNOWFLAKE_PASSWORD": "dummy-password",
        "SNOWFLAKE_ROLE": "DUMMY_ROLE",
        "SNOWFLAKE_WAREHOUSE": "DUMMY_WH",
        "SNOWFLAKE_DATABASE": "DUMMY_DB",
        "SNOWFLAKE_SCHEMA": "DUMMY_SCHEMA",
    }
    _dbt(["parse", "--target", "prod", "--no-partial-parse"], tmp_path, env)
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    assert manifest["metadata"]["adapter_type"] == "snowflake"

    sources = {s["name"]: s for s in manifest["sources"].values()}
    assert set(sources) == {"orders", "customers", "events", "events__items"}
    for name, src in sources.items():
        assert src["meta"]["dagster"]["asset_key"] == ["raw", name]
        assert src["loaded_at_field"] == "_landfall_loaded_at"
        assert src["schema"] == "raw"

    models = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    assert {m["schema"] for m in models.values()} == {"staging", "intermediate", "marts"}
    assert models["customer_order_features"]["config"]["materialized"] == "table"
    for model in models.values():
        assert model["config"]["meta"]["dagster"]["automation_condition"] == "on_upstream_change"
