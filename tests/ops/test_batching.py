"""Per-tick batching: a burst becomes one run per zone per tick (a partition range), with the
same dedup and quarantine guarantees as one run per file."""

from __future__ import annotations

import json

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from devstack import progress
from landing import ingest as landing_ingest
from landing import ledger
from orchestration.components.landing_zones import (
    build_zone_assets,
    zone_job_name,
    zone_partitions,
)
from sensors.landing import build_landing_sensor, contiguous_blocks
from tests.landing.helpers import ZONES
from tests.ops.faults import fail_warehouse_writes

ZONE = ZONES["orders"]
HEADER = "order_id,customer_id,order_ts,amount,status\n"


def _orders(*ids: int) -> bytes:
    return (HEADER + "".join(f"{i},{i},2026-11-01 10:00:00,1.50,placed\n" for i in ids)).encode()


def _tick(instance, bucket, cursor=None) -> dg.SensorResult:
    partitions = zone_partitions(ZONE)
    sensor = build_landing_sensor(ZONE, zone_job_name(ZONE), partitions, runs="per_tick")
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"landing": bucket.landing}
    )
    result = sensor(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def _run(instance, bucket, warehouse, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """Execute a run request the way the daemon launches it: its tags carry the range."""
    return dg.materialize(
        [build_zone_assets(ZONE)],
        partition_key=request.partition_key,
        tags=dict(request.tags),
        instance=instance,
        resources={"landing": bucket.landing, "warehouse": warehouse},
        raise_on_error=False,
    )


def _ledger(warehouse) -> dict[str, ledger.LedgerEntry]:
    with warehouse.connect(read_only=True) as con:
        return {e.object_key: e for e in ledger.entries(con) if e.state != "superseded"}


def test_a_burst_is_one_run_and_one_bad_file_fails_no_other(bucket, warehouse):
    files = {f"orders/f{i:02d}.csv": _orders(i, 100 + i) for i in range(8)}
    files["orders/f03.csv"] = HEADER.encode() + b"1,2,not-a-date,3.50,placed\n"
    bucket.put(files)
    with dg.instance_for_test() as instance:
        first = _tick(instance, bucket)
        [request] = first.run_requests
        assert request.partition_key is None
        assert request.tags[ASSET_PARTITION_RANGE_START_TAG] == "orders/f00.csv"
        assert request.tags[ASSET_PARTITION_RANGE_END_TAG] == "orders/f07.csv"
        assert request.tags["landfall/files"] == "8"
        # the daemon evaluating the tick again from the same cursor asks for the same run
        again = _tick(instance, bucket)
        assert [r.run_key for r in again.run_requests] == [request.run_key]
        assert instance.get_dynamic_partitions(ZONE.partitions_name) == sorted(files)

        run = _run(instance, bucket, warehouse, request)
        assert run.success
        mats = [m for m in run.asset_materializations_for_node("ingest_orders")]
        by_partition = {m.partition: m for m in mats}
        assert sorted(by_partition) == sorted(files) and len(mats) == len(files)
        for key, mat in by_partition.items():
            assert mat.metadata["landfall/file"].value.endswith(key)
            expected = "quarantined" if key == "orders/f03.csv" else "loaded"
            assert mat.metadata["landfall/state"].value == expected
            assert mat.metadata["dagster/row_count"].value == (0 if key.endswith("03.csv") else 2)
        # progress sees each object finish inside a batch run, before its step ends
        assert progress._objects_done(instance, run.run_id) == len(files)
        check = _file_check(run)
        assert not check.passed
        assert "1 of 8 files quarantined" in check.description
        assert "orders/f03.csv" in check.description and "not-a-date" in check.description

    entries = _ledger(warehouse)
    assert {k: e.state for k, e in entries.items()} == {
        k: ("quarantined" if k == "orders/f03.csv" else "loaded") for k in files
    }
    with warehouse.connect(read_only=True) as con:
        assert con.execute("select count(*) from raw.orders").fetchone()[0] == 14


def _file_check(run: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    """The run's file_accepted verdict (the same step also reports schema_change)."""
    [check] = [c for c in run.get_asset_check_evaluations() if c.check_name == "file_accepted"]
    return check


def _latest_partition_metadata(instance, partition: str) -> dict:
    [record] = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(["raw", "orders"]), asset_partitions=[partition]
        ),
        limit=1,
    ).records
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def test_a_run_that_quarantines_says_so_and_a_later_clean_run_hides_nothing(bucket, warehouse):
    bad = "orders/f1.csv"
    files = {f"orders/f{i}.csv": _orders(i) for i in range(3)}
    files[bad] = HEADER.encode() + b"1,2,not-a-date,3.50,placed\n"
    bucket.put(files)
    with dg.instance_for_test() as instance:
        first = _tick(instance, bucket)
        [request] = first.run_requests
        run = _run(instance, bucket, warehouse, request)
        assert run.success  # a quarantine is a verdict on a file, not a failed run
        # the Runs list shows it: a tag on the run, filterable
        assert instance.get_run_by_id(run.run_id).tags["landfall/quarantined"] == "1"
        tagged = instance.get_run_ids(dg.RunsFilter(tags={"landfall/quarantined": "1"}))
        assert tagged == [run.run_id]
        check = _file_check(run)
        url = f"s3://{bucket.landing.bucket}/{bad}"
        assert list(check.metadata["quarantined"].value) == [url]
        assert "not-a-date" in check.metadata["quarantined"].value[url]
        assert check.metadata["quarantined_count"].value == 1

        bucket.put({"orders/f3.csv": _orders(3)})
        [clean_request] = _tick(instance, bucket, first.cursor).run_requests
        clean = _run(instance, bucket, warehouse, clean_request)
        assert clean.success
        assert "landfall/quarantined" not in instance.get_run_by_id(clean.run_id).tags
        clean_check = _file_check(clean)
        assert clean_check.passed
        assert "1 other files of the zone stay quarantined from earlier runs" in (
            clean_check.description
        )
        # the per-file verdict lives on the partition and outlasts the later run
        verdict = _latest_partition_metadata(instance, bad)
        assert verdict["landfall/state"] == "quarantined"
        assert "not-a-date" in verdict["landfall/quarantine_reason"]
        assert _latest_partition_metadata(instance, "orders/f3.csv")["landfall/state"] == "loaded"


def test_reuploads_run_again_grouped_by_partition_order(bucket, warehouse):
    bucket.put({f"orders/f{i}.csv": _orders(i) for i in range(5)})
    with dg.instance_for_test() as instance:
        first = _tick(instance, bucket)
        assert _run(instance, bucket, warehouse, first.run_requests[0]).success
        # new content for f1, f2 (neighbours) and f4, plus a new key
        bucket.put(
            {
                "orders/f1.csv": _orders(11),
                "orders/f2.csv": _orders(12),
                "orders/f4.csv": _orders(14),
                "orders/new.csv": _orders(20),
            }
        )
        second = _tick(instance, bucket, first.cursor)
        ranges = sorted(
            (r.partition_key,)
            if r.partition_key
            else (r.tags[ASSET_PARTITION_RANGE_START_TAG], r.tags[ASSET_PARTITION_RANGE_END_TAG])
            for r in second.run_requests
        )
        assert ranges == [
            ("orders/f1.csv", "orders/f2.csv"),
            ("orders/f4.csv",),
            ("orders/new.csv",),
        ]
        assert not {r.run_key for r in second.run_requests} & {first.run_requests[0].run_key}
        for request in second.run_requests:
            assert _run(instance, bucket, warehouse, request).success
    entries = _ledger(warehouse)
    assert len(entries) == 6 and {e.state for e in entries.values()} == {"loaded"}
    with warehouse.connect(read_only=True) as con:
        ids = sorted(r[0] for r in con.execute("select order_id from raw.orders").fetchall())
    assert ids == [0, 3, 11, 12, 14, 20]


def test_a_transient_error_fails_one_object_and_the_retry_loads_only_it(
    bucket, warehouse, monkeypatch
):
    bucket.put({f"orders/f{i}.csv": _orders(i) for i in range(4)})
    calls: list[str] = []

    def flaky(key: str) -> None:
        calls.append(key)
        if key == "orders/f2.csv" and calls.count(key) <= 2:
            raise OSError("warehouse briefly unavailable")

    fail_warehouse_writes(
        monkeypatch,
        flaky,
        lambda keys: "orders/f2.csv" in keys and calls.count("orders/f2.csv") < 2,
        "warehouse briefly unavailable",
    )
    with dg.instance_for_test() as instance:
        [request] = _tick(instance, bucket).run_requests
        run = _run(instance, bucket, warehouse, request)
        assert run.success
        retries = [e for e in run.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
        assert len(retries) == 2
    # the first attempt loaded f0, f1, f3 (objects load concurrently: in any order); each retry
    # touched only f2
    assert sorted(calls[:4]) == [f"orders/f{i}.csv" for i in range(4)]
    assert calls[4:] == ["orders/f2.csv"] * 2
    entries = _ledger(warehouse)
    assert {e.state for e in entries.values()} == {"loaded"} and len(entries) == 4
    with warehouse.connect(read_only=True) as con:
        assert con.execute("select count(*) from raw.orders").fetchone()[0] == 4


def test_contiguous_blocks():
    position = {"a": 0, "b": 1, "c": 2, "d": 3}
    assert contiguous_blocks(["x", "y"], set(), {}) == [["x", "y"]]
    assert contiguous_blocks(["d", "x", "b", "a"], {"a", "b", "d"}, position) == [
        ["a", "b"],
        ["d"],
        ["x"],
    ]


def test_a_run_stages_its_objects_with_one_loader_call(bucket, warehouse, monkeypatch):
    bucket.put({f"orders/f{i}.csv": _orders(i, 100 + i) for i in range(6)})
    alone: list[str] = []
    real_load = landing_ingest._load

    def load(log, zone, obj, local_copy, wh, lock, records):
        alone.append(obj.key)
        return real_load(log, zone, obj, local_copy, wh, lock, records)

    monkeypatch.setattr(landing_ingest, "_load", load)
    with dg.instance_for_test() as instance:
        [request] = _tick(instance, bucket).run_requests
        assert _run(instance, bucket, warehouse, request).success
    assert alone == []  # no object needed a staging of its own
    with warehouse.connect(read_only=True) as con:
        per_file = con.execute(
            "select _landfall_file, count(*) from raw.orders group by 1 order by 1"
        ).fetchall()
    assert per_file == [(f"orders/f{i}.csv", 2) for i in range(6)]


def test_a_failed_batch_stage_falls_back_to_one_staging_per_object(bucket, warehouse, monkeypatch):
    from landing.warehouse import DuckDBWarehouse

    bucket.put({f"orders/f{i}.csv": _orders(i) for i in range(3)})

    def broken_batch(self, zone, local_copies, folder, log):
        raise RuntimeError("read_csv: out of disk")  # the injected fault; the rest is real

    monkeypatch.setattr(DuckDBWarehouse, "stage_batch", broken_batch)
    _assert_three_loaded_one_by_one(bucket, warehouse)


def _assert_three_loaded_one_by_one(bucket, warehouse) -> None:
    """One run of the three objects succeeds, each logged as staged on its own after the
    batch failed, each loaded once."""
    with dg.instance_for_test() as instance:
        [request] = _tick(instance, bucket).run_requests
        run = _run(instance, bucket, warehouse, request)
        assert run.success
        messages = [entry.user_message for entry in instance.all_logs(run.run_id)]
    assert sum("batch staging of 3 objects failed" in m for m in messages) == 3
    entries = _ledger(warehouse)
    assert len(entries) == 3 and {e.state for e in entries.values()} == {"loaded"}
    with warehouse.connect(read_only=True) as con:
        assert con.execute("select count(*) from raw.orders").fetchone()[0] == 3


def test_a_batch_read_failing_in_the_merge_session_falls_back_to_one_staging_per_object(
    bucket, warehouse, monkeypatch
):
    """DuckDB reads a run's shared stage inside the merge session: a failure there (not at
    `stage_batch`) still ends in each object staged and merged on its own."""
    from landing import warehouse as landing_warehouse

    real_read = landing_warehouse._read_csv
    bucket.put({f"orders/f{i}.csv": _orders(i) for i in range(3)})

    def read(con, table, read, types=None):
        if isinstance(read[0], list):  # the run's shared read of all three copies
            raise RuntimeError("read_csv: out of memory")  # the injected fault
        return real_read(con, table, read, types)

    monkeypatch.setattr(landing_warehouse, "_read_csv", read)
    _assert_three_loaded_one_by_one(bucket, warehouse)


def _event(event_id: str, items: int, customer_id: object = 1) -> str:
    return json.dumps(
        {
            "event_id": event_id,
            "customer_id": customer_id,
            "event_ts": "2026-10-01T10:00:00Z",
            "event_type": "page_view",
            "session": {"id": "s"},
            "items": [{"sku": f"{event_id}-{i}"} for i in range(items)],
        }
    )


def _events_run(instance, bucket, warehouse, cursor=None) -> dg.SensorResult:
    zone = ZONES["events"]
    partitions = zone_partitions(zone)
    sensor = build_landing_sensor(zone, zone_job_name(zone), partitions, runs="per_tick")
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"landing": bucket.landing}
    )
    result = sensor(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    for request in result.run_requests:
        run = dg.materialize(
            [build_zone_assets(zone)],
            tags=dict(request.tags),
            partition_key=request.partition_key,
            instance=instance,
            resources={"landing": bucket.landing, "warehouse": warehouse},
        )
        assert run.success
    return result


def test_a_json_run_is_one_dlt_pipeline_run_merged_per_object(bucket, warehouse, monkeypatch):
    """#22 for dlt zones: the objects of a run load in one pipeline run, each root row tagged
    with its file; each object merges on its own (its child rows found through its root rows),
    so an overwritten file replaces its rows and child rows, and nothing doubles."""
    bucket.put(
        {
            "events/a.jsonl": f"{_event('a1', 2)}\n{_event('a2', 1)}\n".encode(),
            "events/b.jsonl": f"{_event('b1', 3)}\n".encode(),
            "events/c.jsonl": f"{_event('c1', 0)}\n".encode(),
        }
    )
    alone: list[str] = []
    real_load = landing_ingest._load

    def load(log, zone, obj, local_copy, wh, lock, records):
        alone.append(obj.key)
        return real_load(log, zone, obj, local_copy, wh, lock, records)

    monkeypatch.setattr(landing_ingest, "_load", load)
    with dg.instance_for_test() as instance:
        first = _events_run(instance, bucket, warehouse)
        # both overwritten: neighbours in partition order, so one run again
        bucket.put(
            {
                "events/a.jsonl": f"{_event('a3', 1)}\n".encode(),
                "events/b.jsonl": f"{_event('b2', 1)}\n{_event('b3', 0)}\n".encode(),
            }
        )
        _events_run(instance, bucket, warehouse, first.cursor)
        messages = [
            e.user_message for r in instance.get_runs() for e in instance.all_logs(r.run_id)
        ]
    assert alone == []
    assert sum("in one pipeline run" in m for m in messages) == 2
    with warehouse.connect(read_only=True) as con:
        entries = {
            e.object_key: (e.state, e.rows)
            for e in ledger.entries(con, "events")
            if e.state != "superseded"
        }
        events = con.execute(
            "select _landfall_file, event_id from raw.events order by 2"
        ).fetchall()
        items = con.execute(
            "select e._landfall_file, count(*) from raw.events__items i "
            "join raw.events e on i._dlt_parent_id = e._dlt_id group by 1 order by 1"
        ).fetchall()
        item_files = con.execute(
            "select _landfall_file, count(*) from raw.events__items group by 1 order by 1"
        ).fetchall()
        columns = {r[0] for r in con.execute("describe raw.events__items").fetchall()}
    assert entries == {
        "events/a.jsonl": ("loaded", 1),
        "events/b.jsonl": ("loaded", 2),
        "events/c.jsonl": ("loaded", 1),
    }
    assert events == [
        ("events/a.jsonl", "a3"),
        ("events/b.jsonl", "b2"),
        ("events/b.jsonl", "b3"),
        ("events/c.jsonl", "c1"),
    ]
    assert items == item_files == [("events/a.jsonl", 1), ("events/b.jsonl", 1)]
    assert "_dlt_root_id" not in columns and "_landfall_source" not in columns


def test_a_json_run_whose_files_disagree_on_a_type_stages_each_object_alone(bucket, warehouse):
    """In one dlt run the first type seen wins and other values go to a variant column, out of
    the contract check's sight: such a batch is dropped and each object stages alone, where a
    wrong type is quarantined by its contract check."""
    bucket.put(
        {
            "events/a.jsonl": f"{_event('a1', 1)}\n".encode(),
            "events/b.jsonl": f"{_event('b1', 1, customer_id='abc')}\n".encode(),
            "events/c.jsonl": f"{_event('c1', 1)}\n".encode(),
        }
    )
    with dg.instance_for_test() as instance:
        _events_run(instance, bucket, warehouse)
        messages = [
            e.user_message for r in instance.get_runs() for e in instance.all_logs(r.run_id)
        ]
    assert any("each object stages alone" in m for m in messages)
    with warehouse.connect(read_only=True) as con:
        entries = {e.object_key: e for e in ledger.entries(con, "events")}
        columns = {r[0] for r in con.execute("describe raw.events").fetchall()}
    assert {k: e.state for k, e in entries.items()} == {
        "events/a.jsonl": "loaded",
        "events/b.jsonl": "quarantined",
        "events/c.jsonl": "loaded",
    }
    assert "column customer_id" in entries["events/b.jsonl"].reason
    assert not [c for c in columns if "__v_" in c]


def test_objects_with_different_headers_stage_together_as_each_would_alone(
    bucket, warehouse, tmp_path, monkeypatch
):
    """The shared stage reads by column name when the objects' header lines differ (a column
    order of its own, an extra column): raw gets what one staging per object gives."""
    from landing.warehouse import DuckDBWarehouse

    bucket.put(
        {
            "orders/a.csv": _orders(1, 2),
            "orders/b.csv": _orders(3),
            "orders/c.csv": b"status,amount,order_ts,customer_id,order_id\n"
            b"shipped,2.50,2026-11-02 10:00:00,40,4\n",
            "orders/d.csv": HEADER.rstrip("\n").encode()
            + b",coupon\n5,50,2026-11-03 10:00:00,3.00,placed,WELCOME\n",
        }
    )
    query = (
        "select order_id, customer_id, amount, status, _landfall_file from raw.orders order by 1"
    )
    with dg.instance_for_test() as instance:
        [request] = _tick(instance, bucket).run_requests
        assert _run(instance, bucket, warehouse, request).success
    with warehouse.connect(read_only=True) as con:
        batched = con.execute(query).fetchall()
        coupon = con.execute("select coupon from raw.orders where order_id = 5").fetchone()

    alone = DuckDBWarehouse(path=str(tmp_path / "alone.duckdb"))
    monkeypatch.setattr(DuckDBWarehouse, "stage_batch", lambda *args: None)
    with dg.instance_for_test() as instance:
        [request] = _tick(instance, bucket).run_requests
        assert _run(instance, bucket, alone, request).success
    with alone.connect(read_only=True) as con:
        one_by_one = con.execute(query).fetchall()
        coupon_alone = con.execute("select coupon from raw.orders where order_id = 5").fetchone()

    assert [r[0] for r in batched] == [1, 2, 3, 4, 5]
    assert batched[3][1:4] == (40, 2.5, "shipped")
    assert batched == one_by_one and coupon == coupon_alone == ("WELCOME",)
