"""The enforced dbt contract on the mart, for real: a change of the model's SQL that breaks the
contract fails the build naming the column and both types, and the table built before stays as
it was (nothing lost). The project is copied so the change never touches transforms/."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2] / "transforms"
MART_SQL = Path("models") / "marts" / "customer_order_features.sql"

RAW = """
create schema raw;
create table raw.orders (order_id bigint, customer_id bigint, order_ts timestamp,
    amount decimal(18,2), status varchar, _landfall_file varchar, _landfall_etag varchar,
    _landfall_loaded_at timestamp);
create table raw.customers (customer_id bigint, name varchar, email varchar, country varchar,
    signup_ts timestamp, _landfall_file varchar, _landfall_etag varchar,
    _landfall_loaded_at timestamp);
create table raw.events (event_id varchar, customer_id bigint, event_ts timestamp with time zone,
    event_type varchar, session__id varchar, session__device__os varchar,
    session__device__browser varchar, _dlt_load_id varchar, _dlt_id varchar,
    _landfall_file varchar, _landfall_etag varchar, _landfall_loaded_at timestamp);
create table raw.events__items (sku varchar, qty bigint, price double, _dlt_parent_id varchar,
    _dlt_list_idx bigint, _dlt_id varchar, _landfall_file varchar, _landfall_etag varchar,
    _landfall_loaded_at timestamp);
insert into raw.customers values
    (1, 'A', 'a@example.com', 'DE', '2024-01-01', 'customers/c.csv', 'e', '2024-06-01');
insert into raw.orders values
    (10, 1, '2024-05-01', 12.50, 'placed', 'orders/o.csv', 'e', '2024-06-01');
"""


def _dbt(project: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    dbt = Path(sys.executable).with_name("dbt")
    if not dbt.exists():
        pytest.skip("dbt is not installed (transformation dependency group)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "SNOWFLAKE_"))}
    env.update(LANDFALL_WAREHOUSE_PATH=str(tmp / "warehouse.duckdb"), DO_NOT_TRACK="1")
    return subprocess.run(
        [str(dbt), *args, "--project-dir", str(project), "--profiles-dir", str(project)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow  # two dbt builds, ~1-2 min on this machine
def test_a_mart_change_that_breaks_its_contract_fails_naming_the_column(tmp_path: Path) -> None:
    project = tmp_path / "transforms"
    shutil.copytree(PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute(RAW)

    built = _dbt(project, tmp_path, "run", "--select", "+customer_order_features")
    assert built.returncode == 0, built.stdout[-3000:]

    sql = (project / MART_SQL).read_text()
    broken = sql.replace(
        "cast(coalesce(customer_orders.order_count, 0) as bigint) as order_count",
        "cast(coalesce(customer_orders.order_count, 0) as varchar) as order_count",
    )
    assert broken != sql
    (project / MART_SQL).write_text(broken)
    failed = _dbt(project, tmp_path, "run", "--select", "customer_order_features")
    assert failed.returncode != 0
    output = failed.stdout
    assert "contract" in output.lower()
    line = next(row for row in output.splitlines() if "order_count" in row)
    assert "VARCHAR" in line.upper() and "BIGINT" in line.upper()

    # the table built before is untouched: same row, the contract's type
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "select customer_id, order_count from marts.customer_order_features"
        ).fetchall()
        order_count_type = con.execute(
            "select data_type from information_schema.columns where table_schema = 'marts' "
            "and table_name = 'customer_order_features' and column_name = 'order_count'"
        ).fetchone()[0]
    assert rows == [(1, 1)]
    assert order_count_type == "BIGINT"
