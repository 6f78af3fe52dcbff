"""`dbt source freshness` as asset checks on the raw assets, run for real on a DuckDB warehouse.

dbt compares max(_landfall_loaded_at) with the warehouse's `current_timestamp`, which a test
cannot freeze. The clock is controlled from the other side: the raw rows' load times are set
relative to the warehouse's now, and "time passing" moves them further into the past — the same
lag dbt would see if the clock moved forward.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration import transformation
from orchestration.dbt_project import dbt_resource
from orchestration.source_freshness import CHECK_NAME, latest_freshness

RAW_ORDERS = dg.AssetKey(["raw", "orders"])
RAW_CUSTOMERS = dg.AssetKey(["raw", "customers"])
ORDERS_CHECK = dg.AssetCheckKey(RAW_ORDERS, CHECK_NAME)
CUSTOMERS_CHECK = dg.AssetCheckKey(RAW_CUSTOMERS, CHECK_NAME)


def _source_checks() -> list[dg.AssetChecksDefinition]:
    return [
        c
        for c in transformation.defs.asset_checks or []
        if any(k.name == CHECK_NAME for k in c.check_keys)
    ]


@pytest.fixture
def raw_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("LANDFALL_WAREHOUSE_PATH", str(path))
    with duckdb.connect(str(path)) as con:
        con.execute("create schema raw")
        con.execute(
            "create table raw.orders (order_id bigint, customer_id bigint, order_ts timestamp, "
            "amount decimal(18,2), status varchar, _landfall_file varchar, "
            "_landfall_etag varchar, _landfall_loaded_at timestamp)"
        )
        con.execute(
            "create table raw.customers (customer_id bigint, name varchar, email varchar, "
            "country varchar, signup_ts timestamp, _landfall_file varchar, "
            "_landfall_etag varchar, _landfall_loaded_at timestamp)"
        )
    yield path


def _load(path: Path, table: str, hours_ago: float) -> None:
    """Rows as the loaders write them (naive UTC load time), loaded `hours_ago` hours ago."""
    loaded_at = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=hours_ago)
    with duckdb.connect(str(path)) as con:
        if table == "orders":
            con.execute(
                "insert into raw.orders values (1, 1, '2024-01-01', 1.50, 'placed', "
                "'orders/a.csv', 'e1', ?)",
                [loaded_at],
            )
        else:
            con.execute(
                "insert into raw.customers values (1, 'A', 'a@x', 'DE', '2024-01-01', "
                "'customers/a.csv', 'e1', ?)",
                [loaded_at],
            )


def _time_passes(path: Path, table: str, hours: float) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute(
            f"update raw.{table} set _landfall_loaded_at = _landfall_loaded_at - ?",
            [timedelta(hours=hours)],
        )


def _run_checks(instance: dg.DagsterInstance) -> dict[dg.AssetCheckKey, dg.AssetCheckEvaluation]:
    defs = dg.Definitions(
        asset_checks=_source_checks(),
        jobs=[
            dg.define_asset_job(
                "freshness", selection=dg.AssetSelection.checks(ORDERS_CHECK, CUSTOMERS_CHECK)
            )
        ],
        resources={"dbt": dbt_resource()},
    )
    result = defs.resolve_job_def("freshness").execute_in_process(instance=instance)
    assert result.success
    return {e.asset_check_key: e for e in result.get_asset_check_evaluations()}


@pytest.mark.slow  # two `dbt source freshness` runs: ~70-165 s on this shared machine
def test_a_raw_source_goes_warn_then_error(raw_warehouse: Path) -> None:
    _load(raw_warehouse, "orders", hours_ago=30)  # past warn_after (26h)
    _load(raw_warehouse, "customers", hours_ago=1)
    with dg.instance_for_test() as instance:
        first = _run_checks(instance)
        assert first[CUSTOMERS_CHECK].passed
        assert first[CUSTOMERS_CHECK].metadata["dbt_status"].value == "pass"
        warned = first[ORDERS_CHECK]
        assert not warned.passed
        assert warned.severity == dg.AssetCheckSeverity.WARN
        assert warned.metadata["dbt_status"].value == "warn"
        lag = warned.metadata["lag_seconds"].value
        assert 30 * 3600 - 60 < lag < 30 * 3600 + 600
        assert warned.metadata["max_loaded_at"].value.startswith(
            (datetime.now(UTC) - timedelta(hours=30)).strftime("%Y-%m-%d")
        )

        _time_passes(raw_warehouse, "orders", hours=25)  # past error_after (50h)
        errored = _run_checks(instance)
        assert not errored[ORDERS_CHECK].passed
        assert errored[ORDERS_CHECK].severity == dg.AssetCheckSeverity.ERROR
        assert "error after 50 hour" in errored[ORDERS_CHECK].description
        assert errored[CUSTOMERS_CHECK].passed  # the other source is untouched

        # what `landfall status` prints per source
        shown = {r.asset: r for r in latest_freshness(instance, [RAW_ORDERS, RAW_CUSTOMERS])}
        assert shown["raw/orders"].state == "failed"
        assert shown["raw/orders"].lag.startswith("55h")
        assert shown["raw/customers"].state == "passed"


@pytest.mark.slow
def test_a_missing_raw_table_fails_the_check_with_dbt_error(raw_warehouse: Path) -> None:
    with duckdb.connect(str(raw_warehouse)) as con:
        con.execute("drop table raw.customers")
    _load(raw_warehouse, "orders", hours_ago=1)
    with dg.instance_for_test() as instance:
        results = _run_checks(instance)
    assert results[ORDERS_CHECK].passed
    failed = results[CUSTOMERS_CHECK]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert "customers" in failed.description


def test_checks_run_after_each_load_and_on_the_sources_cron() -> None:
    """Evaluated by Dagster's automation evaluation over the workspace's graph; the raw asset
    (ingestion location) appears as its spec, so this runs in the transformation group alone."""
    raw_orders = dg.AssetSpec(
        RAW_ORDERS, partitions_def=dg.DynamicPartitionsDefinition(name="landing_orders")
    )
    defs = dg.Definitions(
        assets=[raw_orders, *(transformation.defs.assets or [])],
        asset_checks=_source_checks(),
        resources=transformation.defs.resources,
    )

    def requested(result) -> bool:
        return any(r.key == ORDERS_CHECK and r.true_subset.size for r in result.results)

    start = datetime(2026, 1, 5, 10, 5, tzinfo=UTC)
    with dg.instance_for_test() as instance:
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, evaluation_time=start
        )
        instance.add_dynamic_partitions("landing_orders", ["orders/a.csv"])
        instance.report_runless_asset_event(
            dg.AssetMaterialization(RAW_ORDERS, partition="orders/a.csv")
        )
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=result.cursor, evaluation_time=start
        )
        assert requested(result)  # after the load
        result = dg.evaluate_automation_conditions(
            defs=defs,
            instance=instance,
            cursor=result.cursor,
            evaluation_time=start + timedelta(minutes=20),
        )
        assert not requested(result)  # nothing new, no cron tick
        result = dg.evaluate_automation_conditions(
            defs=defs,
            instance=instance,
            cursor=result.cursor,
            evaluation_time=start + timedelta(minutes=56),
        )
        assert requested(result)  # the hourly tick at 11:00
