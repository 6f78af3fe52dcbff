"""The landing path with LANDFALL_ENV=prod's warehouse: Sling stages into Snowflake, the merge
and the ledger run through dagster-snowflake's SnowflakeResource. Against fakesnow's server
(Snowflake's HTTP protocol on 127.0.0.1), the same code and settings an account gets, only the
endpoint differs."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest

from devstack import snowflake_stand_in
from devstack.local_stack import free_port
from devstack.stack import stop
from landing import ledger
from landing.snowflake_warehouse import SnowflakeWarehouse
from orchestration.resources import warehouse as warehouse_resource
from tests.landing.helpers import ZONES, tick

pytestmark = pytest.mark.timeout(300)
HEADER = "order_id,customer_id,order_ts,amount,status\n"


def _orders(*ids: int) -> bytes:
    return (HEADER + "".join(f"{i},{i},2026-10-01 10:00:00,{i}.25,placed\n" for i in ids)).encode()


@pytest.fixture(scope="module")
def snowflake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnowflakeWarehouse]:
    port = free_port()
    log = tmp_path_factory.mktemp("fakesnow") / "server.log"
    server = snowflake_stand_in.start_fakesnow(port, log)
    try:
        with pytest.MonkeyPatch.context() as env:
            for name, value in snowflake_stand_in.snowflake_environment(port).items():
                env.setenv(name, value)
            env.setenv("LANDFALL_ENV", "prod")
            configured = warehouse_resource()
            assert isinstance(configured, SnowflakeWarehouse)
            # EnvVar credentials resolve when Dagster initialises the resource
            with dg.build_resources({"warehouse": configured}) as resources:
                warehouse = resources.warehouse
                with warehouse.connect() as con:
                    con.execute(f"CREATE DATABASE IF NOT EXISTS {snowflake_stand_in.DATABASE}")
                yield warehouse
    finally:
        stop(server)


def _ingest_all(instance, bucket, warehouse, cursor=None, zone_name="orders") -> dg.SensorResult:
    from orchestration.components.landing_zones import build_zone_assets

    zone = ZONES[zone_name]
    result = tick(instance, zone, bucket.landing, cursor)
    for request in result.run_requests:
        dg.materialize(
            [build_zone_assets(zone)],
            partition_key=request.partition_key,
            instance=instance,
            resources={"landing": bucket.landing, "warehouse": warehouse},
        )
    return result


def test_files_land_in_snowflake_once_with_bad_files_quarantined(bucket, snowflake):
    bucket.put(
        {
            "orders/a.csv": _orders(1, 2, 3),
            "orders/types.csv": HEADER.encode() + b"x,1,2026-10-01 10:00:00,1.0,placed\n",
            "orders/b.csv": _orders(4),
        }
    )
    with dg.instance_for_test() as instance:
        first = _ingest_all(instance, bucket, snowflake)
        bucket.put({"orders/a.csv": _orders(5, 6)})  # overwritten: replaces its rows
        _ingest_all(instance, bucket, snowflake, cursor=first.cursor)
        _ingest_all(instance, bucket, snowflake, cursor=first.cursor)  # same versions again
    with snowflake.connect() as con:
        rows = con.execute(
            'SELECT "_LANDFALL_FILE", count(*), sum("AMOUNT") FROM "RAW"."ORDERS" '
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
        entries = ledger.entries(con, "orders")
    assert [(f, n) for f, n, _ in rows] == [("orders/a.csv", 2), ("orders/b.csv", 1)]
    assert float(rows[0][2]) == 11.5  # 5.25 + 6.25: typed by the contract, not text
    states = sorted((e.object_key, e.state, e.rows) for e in entries)
    assert states == [
        ("orders/a.csv", "loaded", 2),
        ("orders/a.csv", "superseded", 0),
        ("orders/b.csv", "loaded", 1),
        ("orders/types.csv", "quarantined", 0),
    ]
    [bad] = [e for e in entries if e.state == "quarantined"]
    assert "column order_id: 1 value(s) are not bigint, e.g. 'x'" in bad.reason


def test_nested_json_lands_in_snowflake_through_dlt(bucket, snowflake):
    from landing.samples import sample_files

    events = {k: v for k, v in sample_files().items() if k.startswith("events/")}
    bucket.put(events)
    with dg.instance_for_test() as instance:
        _ingest_all(instance, bucket, snowflake, zone_name="events")
    with snowflake.connect() as con:
        entries = ledger.entries(con, "events")
        raw = con.execute('SELECT count(*) FROM "RAW"."EVENTS"').fetchone()[0]
        items = con.execute('SELECT count(*) FROM "RAW"."EVENTS__ITEMS"').fetchone()[0]
    assert {e.state for e in entries} == {"loaded"} and len(entries) == len(events)
    assert raw == sum(e.rows for e in entries) > 0
    assert items > 0
