"""Partition retention: a zone's retention sensor keeps its newest partitions in Dagster while
the ledger keeps every object; a removed key that lands again is registered again and loads."""

from __future__ import annotations

import dagster as dg

from landing import ledger
from orchestration.components.landing_zones import zone_partitions
from sensors.retention import build_retention_sensor, retention_deletes
from tests.landing.helpers import ZONES, ingest, tick

HEADER = "order_id,customer_id,order_ts,amount,status\n"


def _orders(i: int) -> bytes:
    return f"{HEADER}{i},1,2026-10-01 10:00:00,{i}.5,placed\n".encode()


def _retention_tick(instance: dg.DagsterInstance, zone) -> list[str]:
    """One tick of the zone's retention sensor, its delete request applied as the daemon does."""
    sensor = build_retention_sensor(zone, zone_partitions(zone))
    result = sensor(dg.build_sensor_context(instance=instance))
    assert not result.run_requests
    removed = []
    for request in result.dynamic_partitions_requests or []:
        assert isinstance(request, dg.DeleteDynamicPartitionsRequest)
        for key in request.partition_keys:
            instance.delete_dynamic_partition(request.partitions_def_name, key)
            removed.append(key)
    return removed


def test_old_materialized_partitions_are_removed_and_the_ledger_keeps_them(bucket, warehouse):
    zone = ZONES["orders"].model_copy(
        update={"retention": ZONES["orders"].retention.model_copy(update={"keep_partitions": 3})}
    )

    def drop_and_load(names: list[str], cursor: str | None) -> str:
        bucket.put({f"orders/{n}.csv": _orders(ord(n[0])) for n in names})
        result = tick(instance, zone, bucket.landing, cursor)
        for request in result.run_requests:
            ingest(instance, zone, request.partition_key, bucket.landing, warehouse)
        return result.cursor

    with dg.instance_for_test() as instance:
        cursor = drop_and_load(["a", "b", "c", "d"], None)
        assert len(instance.get_dynamic_partitions(zone.partitions_name)) == 4
        # the landing tick only registers; the retention tick prunes the oldest handled ones
        cursor = drop_and_load(["e", "f"], cursor)
        assert len(instance.get_dynamic_partitions(zone.partitions_name)) == 6
        assert _retention_tick(instance, zone) == ["orders/a.csv", "orders/b.csv", "orders/c.csv"]
        assert _retention_tick(instance, zone) == []  # at its limit: nothing more
        kept = instance.get_dynamic_partitions(zone.partitions_name)
        assert kept == ["orders/d.csv", "orders/e.csv", "orders/f.csv"]
        # a removed key landing again is a new partition and loads
        bucket.put({"orders/a.csv": _orders(99)})
        result = tick(instance, zone, bucket.landing, cursor)
        assert [r.partition_key for r in result.run_requests] == ["orders/a.csv"]
        ingest(instance, zone, "orders/a.csv", bucket.landing, warehouse)
        assert "orders/a.csv" in instance.get_dynamic_partitions(zone.partitions_name)
        assert "orders/b.csv" not in instance.get_dynamic_partitions(zone.partitions_name)
        # the re-registered key is the newest partition: retention now removes the oldest
        assert _retention_tick(instance, zone) == ["orders/d.csv"]
    with warehouse.connect(read_only=True) as con:
        entries = ledger.entries(con, "orders")
        rows = dict(
            con.execute("select _landfall_file, count(*) from raw.orders group by 1").fetchall()
        )
    assert {e.object_key for e in entries if e.state == "loaded"} == {
        f"orders/{n}.csv" for n in "abcdef"
    }
    assert [e.state for e in entries if e.object_key == "orders/a.csv"] == ["superseded", "loaded"]
    assert rows == {f"orders/{n}.csv": 1 for n in "abcdef"}


def test_a_partition_never_handled_is_not_removed(bucket, warehouse):
    zone = ZONES["orders"].model_copy(
        update={"retention": ZONES["orders"].retention.model_copy(update={"keep_partitions": 1})}
    )
    with dg.instance_for_test() as instance:
        partitions = zone_partitions(zone)
        instance.add_dynamic_partitions(zone.partitions_name, ["orders/x.csv", "orders/y.csv"])
        # neither was ever materialized: nothing is handled, nothing removed
        assert retention_deletes(zone, instance, partitions, []) == []
