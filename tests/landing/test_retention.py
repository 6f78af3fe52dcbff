"""Partition retention: a zone's retention sensor keeps its newest partitions in Dagster while
the ledger keeps every object; a removed key that lands again is registered again and loads.
With `forget_runs` it also deletes, a tick later, the finished runs whose partitions are all
removed, so Dagster's materialization history stays at about the kept partitions."""

from __future__ import annotations

import dagster as dg

from common.dagster_private import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)
from landing import ledger
from landing.zones import ZoneSpec
from orchestration.components.landing_zones import (
    build_zone_assets,
    zone_job_name,
    zone_partitions,
)
from sensors.retention import build_retention_sensor, retention_deletes
from tests.landing.helpers import ZONES, ingest, tick

HEADER = "order_id,customer_id,order_ts,amount,status\n"


def _orders(i: int) -> bytes:
    return f"{HEADER}{i},1,2026-10-01 10:00:00,{i}.5,placed\n".encode()


def _zone(keep: int, **retention) -> ZoneSpec:
    spec = ZONES["orders"].retention.model_copy(update={"keep_partitions": keep, **retention})
    return ZONES["orders"].model_copy(update={"retention": spec})


class Retention:
    """The zone's retention sensor ticking as the daemon runs it: its cursor carried from tick
    to tick, its delete request applied after each tick."""

    def __init__(self, instance: dg.DagsterInstance, zone: ZoneSpec) -> None:
        self.instance, self.cursor = instance, None
        self.sensor = build_retention_sensor(zone, zone_partitions(zone))

    def tick(self) -> list[str]:
        result = self.sensor(dg.build_sensor_context(instance=self.instance, cursor=self.cursor))
        assert not result.run_requests
        self.cursor = result.cursor
        removed = []
        for request in result.dynamic_partitions_requests or []:
            assert isinstance(request, dg.DeleteDynamicPartitionsRequest)
            for key in request.partition_keys:
                self.instance.delete_dynamic_partition(request.partitions_def_name, key)
                removed.append(key)
        return removed


def _rows(warehouse) -> dict[str, int]:
    with warehouse.connect(read_only=True) as con:
        return dict(
            con.execute("select _landfall_file, count(*) from raw.orders group by 1").fetchall()
        )


def test_old_materialized_partitions_are_removed_and_the_ledger_keeps_them(bucket, warehouse):
    zone = _zone(keep=3)

    def drop_and_load(names: list[str], cursor: str | None) -> str:
        bucket.put({f"orders/{n}.csv": _orders(ord(n[0])) for n in names})
        result = tick(instance, zone, bucket.landing, cursor)
        for request in result.run_requests:
            ingest(instance, zone, request.partition_key, bucket.landing, warehouse)
        return result.cursor

    with dg.instance_for_test() as instance:
        retention = Retention(instance, zone)
        cursor = drop_and_load(["a", "b", "c", "d"], None)
        assert len(instance.get_dynamic_partitions(zone.partitions_name)) == 4
        # the landing tick only registers; the retention tick prunes the oldest handled ones
        cursor = drop_and_load(["e", "f"], cursor)
        assert len(instance.get_dynamic_partitions(zone.partitions_name)) == 6
        assert retention.tick() == ["orders/a.csv", "orders/b.csv", "orders/c.csv"]
        assert retention.tick() == []  # at its limit: nothing more (and a, b, c's runs go)
        kept = instance.get_dynamic_partitions(zone.partitions_name)
        assert kept == ["orders/d.csv", "orders/e.csv", "orders/f.csv"]
        # a removed key landing again (new ETag) is a new partition and loads
        bucket.put({"orders/a.csv": _orders(99)})
        result = tick(instance, zone, bucket.landing, cursor)
        assert [r.partition_key for r in result.run_requests] == ["orders/a.csv"]
        ingest(instance, zone, "orders/a.csv", bucket.landing, warehouse)
        assert "orders/a.csv" in instance.get_dynamic_partitions(zone.partitions_name)
        assert "orders/b.csv" not in instance.get_dynamic_partitions(zone.partitions_name)
        # the re-registered key is the newest partition: retention now removes the oldest
        assert retention.tick() == ["orders/d.csv"]
        # a removed key registered again with the same version (a replayed notification, an
        # operator's re-run) and run again: its runs were deleted from Dagster, the ledger
        # still knows the version, so nothing loads twice
        instance.add_dynamic_partitions(zone.partitions_name, ["orders/b.csv"])
        ingest(instance, zone, "orders/b.csv", bucket.landing, warehouse)
    with warehouse.connect(read_only=True) as con:
        entries = ledger.entries(con, "orders")
    assert {e.object_key for e in entries if e.state == "loaded"} == {
        f"orders/{n}.csv" for n in "abcdef"
    }
    assert [e.state for e in entries if e.object_key == "orders/a.csv"] == ["superseded", "loaded"]
    assert [e.state for e in entries if e.object_key == "orders/b.csv"] == ["loaded"]
    assert _rows(warehouse) == {f"orders/{n}.csv": 1 for n in "abcdef"}


def test_runs_of_removed_partitions_are_forgotten_and_the_others_kept(bucket, warehouse):
    """Range runs as the per-tick landing sensor asks for them, executed for real; a run that
    failed before loading anything and one not started yet are created through Dagster's
    instance as the daemon records them."""
    zone = _zone(keep=3)
    asset_key = dg.AssetKey(zone.asset_key_path)
    job = dg.Definitions(
        assets=[build_zone_assets(zone)],
        jobs=[dg.define_asset_job(zone_job_name(zone), selection=[asset_key])],
        resources={"landing": bucket.landing, "warehouse": warehouse},
    ).resolve_job_def(zone_job_name(zone))

    def land(names: list[str], cursor: str | None, run: bool = True) -> tuple[str, str]:
        bucket.put({f"orders/{n}.csv": _orders(ord(n[0])) for n in names})
        result = tick(instance, zone, bucket.landing, cursor, runs="per_tick")
        [request] = result.run_requests
        if not run:  # the run fails before loading anything
            failed = instance.create_run_for_job(
                job, tags=dict(request.tags), status=dg.DagsterRunStatus.NOT_STARTED
            )
            instance.report_run_failed(failed)
            return result.cursor, failed.run_id
        done = dg.materialize(
            [build_zone_assets(zone)],
            partition_key=request.partition_key,
            tags=dict(request.tags),
            instance=instance,
            resources={"landing": bucket.landing, "warehouse": warehouse},
        )
        return result.cursor, done.run_id

    def runs() -> set[str]:
        return {r.run_id for r in instance.get_runs()}

    def key(n: str) -> str:
        return f"orders/{n}.csv"

    with dg.instance_for_test() as instance:
        retention = Retention(instance, zone)
        cursor, ab = land(["a", "b"], None)
        cursor, cd = land(["c", "d"], cursor)
        cursor, xy = land(["x", "y"], cursor, run=False)
        # x is loaded by a later run; y is never handled
        x = ingest(instance, zone, key("x"), bucket.landing, warehouse).run_id
        # a re-run of a, queued and not started yet
        pending = instance.create_run_for_job(
            job,
            tags={PARTITION_NAME_TAG: key("a"), "landfall/zone": zone.name},
            status=dg.DagsterRunStatus.NOT_STARTED,
        ).run_id
        assert instance.get_run_by_id(xy).tags[ASSET_PARTITION_RANGE_START_TAG] == key("x")
        assert instance.get_run_by_id(cd).tags[ASSET_PARTITION_RANGE_END_TAG] == key("d")

        assert retention.tick() == [key("a"), key("b"), key("c")]
        assert runs() == {ab, cd, xy, x, pending}  # nothing deleted before the removal applies
        assert retention.tick() == []
        # ab held only removed partitions; cd still holds d, pending has not run
        assert runs() == {cd, xy, x, pending}

        cursor, efg = land(["e", "f", "g"], cursor)
        # d and x go; y (its run failed, nothing loaded it) stays
        assert retention.tick() == [key("d"), key("x")]
        assert retention.tick() == []
        # cd and x hold only removed partitions now; xy still holds y
        assert runs() == {xy, pending, efg}
        registered = set(instance.get_dynamic_partitions(zone.partitions_name))
        assert registered == {key(n) for n in "yefg"}
        # Dagster's materialization history holds the kept partitions only
        assert instance.get_materialized_partitions(asset_key) == {key(n) for n in "efg"}

        # once the pending run has finished it goes too
        instance.report_run_failed(instance.get_run_by_id(pending))
        assert retention.tick() == []
        assert runs() == {xy, efg}
    # the ledger keeps every object
    with warehouse.connect(read_only=True) as con:
        loaded = {e.object_key for e in ledger.entries(con, "orders") if e.state == "loaded"}
    assert loaded == {key(n) for n in "abcdxefg"}


def test_without_forget_runs_the_runs_stay(bucket, warehouse):
    zone = _zone(keep=1, forget_runs=False)
    with dg.instance_for_test() as instance:
        bucket.put({f"orders/{n}.csv": _orders(ord(n)) for n in "ab"})
        result = tick(instance, zone, bucket.landing, None)
        for request in result.run_requests:
            ingest(instance, zone, request.partition_key, bucket.landing, warehouse)
        retention = Retention(instance, zone)
        assert retention.tick() == ["orders/a.csv"]
        assert retention.tick() == []
        assert len(instance.get_runs()) == 2
        materialized = instance.get_materialized_partitions(dg.AssetKey(zone.asset_key_path))
        assert materialized == {"orders/a.csv", "orders/b.csv"}


def test_a_partition_never_handled_is_not_removed(bucket, warehouse):
    zone = _zone(keep=1)
    with dg.instance_for_test() as instance:
        partitions = zone_partitions(zone)
        instance.add_dynamic_partitions(zone.partitions_name, ["orders/x.csv", "orders/y.csv"])
        # neither was ever materialized: nothing is handled, nothing removed
        assert retention_deletes(zone, instance, partitions, []) == []


def test_the_keep_variable_overrides_every_zone_on_the_next_tick(bucket, warehouse, monkeypatch):
    zone = _zone(keep=50_000)  # the zone file keeps everything; the operator lowers it
    bucket.put({f"orders/{n}.csv": _orders(ord(n)) for n in "abcd"})
    with dg.instance_for_test() as instance:
        result = tick(instance, zone, bucket.landing, None)
        for request in result.run_requests:
            ingest(instance, zone, request.partition_key, bucket.landing, warehouse)
        retention = Retention(instance, zone)  # built before the variable is set
        assert retention.tick() == []
        monkeypatch.setenv("LANDFALL_RETENTION_KEEP", "1")
        assert retention.tick() == ["orders/a.csv", "orders/b.csv", "orders/c.csv"]
        assert instance.get_dynamic_partitions(zone.partitions_name) == ["orders/d.csv"]


def test_the_interval_variable_sets_every_retention_sensor(monkeypatch):
    monkeypatch.setenv("LANDFALL_RETENTION_INTERVAL_SECONDS", "30")
    zone = _zone(keep=3)
    sensor = build_retention_sensor(zone, zone_partitions(zone))
    assert zone.retention.interval_seconds == 300
    assert sensor.minimum_interval_seconds == 30
