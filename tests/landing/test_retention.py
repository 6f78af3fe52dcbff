"""Partition retention: a zone keeps its newest partitions in Dagster while the ledger keeps
every object; a removed key that lands again is registered again and loads."""

from __future__ import annotations

import dagster as dg

from landing import ledger
from tests.landing.helpers import ZONES, ingest, tick

HEADER = "order_id,customer_id,order_ts,amount,status\n"


def _orders(i: int) -> bytes:
    return f"{HEADER}{i},1,2026-10-01 10:00:00,{i}.5,placed\n".encode()


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
        # the next tick that registers keys prunes the oldest materialized one beyond 3
        cursor = drop_and_load(["e", "f"], cursor)
        kept = instance.get_dynamic_partitions(zone.partitions_name)
        assert kept == [
            "orders/b.csv",
            "orders/c.csv",
            "orders/d.csv",
            "orders/e.csv",
            "orders/f.csv",
        ]
        # a removed key landing again is a new partition and loads
        bucket.put({"orders/a.csv": _orders(99)})
        result = tick(instance, zone, bucket.landing, cursor)
        assert [r.partition_key for r in result.run_requests] == ["orders/a.csv"]
        ingest(instance, zone, "orders/a.csv", bucket.landing, warehouse)
        assert "orders/a.csv" in instance.get_dynamic_partitions(zone.partitions_name)
        assert "orders/b.csv" not in instance.get_dynamic_partitions(zone.partitions_name)
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
    from orchestration.components.landing_zones import zone_partitions
    from sensors.landing import retention_deletes

    with dg.instance_for_test() as instance:
        partitions = zone_partitions(zone)
        instance.add_dynamic_partitions(zone.partitions_name, ["orders/x.csv", "orders/y.csv"])
        # neither was ever materialized: nothing is handled, nothing removed
        assert retention_deletes(zone, instance, partitions, []) == []
