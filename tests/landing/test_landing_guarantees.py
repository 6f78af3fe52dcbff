"""Landing guarantees, each checked against the ledger and the raw row counts: nothing lost,
nothing twice, bad files quarantined with their reason, awkward keys handled."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import pytest

from landing import ledger
from landing.objects import object_key_for
from tests.landing.helpers import (
    FILE_CLASS_LIMIT,
    ZONES,
    assert_quarantined_with_reasons,
    bad_file_classes,
    good_file_classes,
    ingest,
    tick,
)
from tests.landing.helpers import ORDERS_HEADER as HEADER
from tests.landing.helpers import orders_csv as _orders


def _ledger(warehouse) -> dict[tuple[str, str], ledger.LedgerEntry]:
    with warehouse.connect(read_only=True) as con:
        return {(e.object_key, e.etag): e for e in ledger.entries(con)}


def _rows_by_file(warehouse) -> dict[str, int]:
    with warehouse.connect(read_only=True) as con:
        return dict(
            con.execute("select _landfall_file, count(*) from raw.orders group by 1").fetchall()
        )


def _tick_and_ingest(instance, bucket, warehouse, zone=None, cursor=None) -> dg.SensorResult:
    zone = zone or ZONES["orders"]
    result = tick(instance, zone, bucket.landing, cursor)
    for request in result.run_requests:
        ingest(instance, zone, request.partition_key, bucket.landing, warehouse)
    return result


AWKWARD_KEYS = [
    "orders/with space.csv",
    "orders/ünïcødé-日本.csv",
    "orders/quote'double\".csv",
    "orders/semi;colon--dash.csv",
    "orders/dots...in...name.csv",
    "orders/percent%41.csv",
    "orders/Case.csv",
    "orders/case.csv",
    "orders/" + "long-" * 180 + ".csv",
]


def test_awkward_keys_load_with_their_exact_key(bucket, warehouse):
    files = {key: _orders(i * 10 + 1, i * 10 + 2) for i, key in enumerate(AWKWARD_KEYS)}
    bucket.put(files)
    with dg.instance_for_test() as instance:
        result = _tick_and_ingest(instance, bucket, warehouse)
        partitions = instance.get_dynamic_partitions(ZONES["orders"].partitions_name)
    assert sorted(object_key_for(p) for p in partitions) == sorted(AWKWARD_KEYS)
    assert len(result.run_requests) == len(AWKWARD_KEYS)
    assert _rows_by_file(warehouse) == {key: 2 for key in AWKWARD_KEYS}
    assert {k for k, _ in _ledger(warehouse)} == set(AWKWARD_KEYS)


def _dagster_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return home


def test_each_bad_file_class_is_quarantined_and_the_good_file_still_loads(
    bucket, warehouse, tmp_path, monkeypatch, capsys
):
    zone = ZONES["orders"].model_copy(update={"max_file_bytes": FILE_CLASS_LIMIT})
    # a zone that refuses empty exports; its own prefix, so the two zones never share a key
    strict = zone.model_copy(update={"prefix": "strict-orders/", "empty_files": "quarantine"})
    bad, good = bad_file_classes(), good_file_classes()
    unmatched = {"orders/readme.txt": b"exports land here\n", "orders/2026/": b""}
    bucket.put(
        {key: body for key, (body, _) in bad.items()}
        | {key: body for key, (body, _) in good.items()}
        | unmatched
    )
    home = _dagster_home(tmp_path)
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        _tick_and_ingest(instance, bucket, warehouse, zone=zone)
        _tick_and_ingest(instance, bucket, warehouse, zone=strict)
        partitions = instance.get_dynamic_partitions(zone.partitions_name)
    entries = {key: e for (key, _), e in _ledger(warehouse).items()}
    assert sorted(entries) == sorted([*bad, *good])  # unmatched keys were never registered
    assert sorted(partitions) == sorted(entries)
    for key, (_, rows) in good.items():
        assert (entries[key].state, entries[key].rows, entries[key].reason) == (
            "loaded",
            rows,
            None,
        )
    assert_quarantined_with_reasons(bucket, entries, bad)
    assert _rows_by_file(warehouse) == {k: rows for k, (_, rows) in good.items() if rows}
    with warehouse.connect(read_only=True) as con:
        bom_rows = con.execute(
            "select order_id from raw.orders where _landfall_file = 'orders/bom.csv' order by 1"
        ).fetchall()
    assert bom_rows == [(3,), (4,)]
    # nothing is deleted from the landing prefix
    landed = bucket.s3.list_objects_v2(Bucket=bucket.landing.bucket, Prefix="orders/")
    assert len(landed["Contents"]) == len(bad) - 1 + len(good) + len(unmatched)

    # an object no pattern takes is listed as ignored with the reason, never silently dropped
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("LANDFALL_WAREHOUSE_PATH", warehouse.path)
    monkeypatch.setenv("LANDFALL_BUCKET", bucket.landing.bucket)
    from devstack.cli import main

    assert main(["status"]) == 0
    out = capsys.readouterr().out.splitlines()
    [line] = [x for x in out if "orders/readme.txt" in x]
    assert line.split()[:2] == ["orders", "ignored"]
    assert line.endswith("-- matches no pattern of zone orders (*.csv)")
    assert not [x for x in out if "orders/2026/" in x]  # a folder marker is not an object
    assert "ignored 1" in next(x for x in out if x.startswith("pending "))


def test_blank_lines_between_records_load_every_record(bucket, warehouse):
    body = _orders(1, 2) + b"\n" + _orders(3)[len(HEADER) :] + b"\n\n"
    bucket.put({"orders/gaps.csv": body})
    with dg.instance_for_test() as instance:
        _tick_and_ingest(instance, bucket, warehouse)
    [entry] = _ledger(warehouse).values()
    assert (entry.state, entry.rows, entry.reason) == ("loaded", 3, None)
    assert _rows_by_file(warehouse) == {"orders/gaps.csv": 3}


def test_malformed_jsonl_is_quarantined(bucket, warehouse):
    zone = ZONES["events"]
    good = (
        json.dumps(
            {
                "event_id": "e1",
                "customer_id": 1,
                "event_ts": "2026-10-01T10:00:00Z",
                "event_type": "page_view",
                "session": {"id": "s"},
                "items": [],
            }
        )
        + "\n"
    )
    bucket.put(
        {"events/bad.jsonl": good.encode() + b"{not json\n", "events/good.jsonl": good.encode()}
    )
    with dg.instance_for_test() as instance:
        _tick_and_ingest(instance, bucket, warehouse, zone=zone)
    states = {key: (e.state, e.reason) for (key, _), e in _ledger(warehouse).items()}
    assert states["events/good.jsonl"] == ("loaded", None)
    assert states["events/bad.jsonl"][0] == "quarantined"
    assert "malformed JSON on line 2" in states["events/bad.jsonl"][1]


def test_overwrite_supersedes_the_earlier_version_and_its_rows(bucket, warehouse):
    bucket.put({"orders/a.csv": _orders(1, 2, 3)})
    with dg.instance_for_test() as instance:
        first = _tick_and_ingest(instance, bucket, warehouse)
        bucket.put({"orders/a.csv": _orders(4, 5)})
        second = _tick_and_ingest(instance, bucket, warehouse, cursor=first.cursor)
        partitions = instance.get_dynamic_partitions(ZONES["orders"].partitions_name)
    assert partitions == ["orders/a.csv"]  # one partition per key; versions are runs
    assert second.run_requests[0].run_key != first.run_requests[0].run_key
    versions = sorted(_ledger(warehouse).values(), key=lambda e: e.updated_at)
    assert [(e.state, e.rows) for e in versions] == [("superseded", 0), ("loaded", 2)]
    assert _rows_by_file(warehouse) == {"orders/a.csv": 2}


def test_an_empty_export_replaces_the_earlier_version_and_its_rows(bucket, warehouse):
    """A header-only file is a valid export of nothing: no loader runs, the ledger says loaded
    with 0 rows (0 records validated, 0 rows written) and the key's earlier rows are gone."""
    bucket.put({"orders/a.csv": _orders(1, 2, 3)})
    with dg.instance_for_test() as instance:
        first = _tick_and_ingest(instance, bucket, warehouse)
        bucket.put({"orders/a.csv": HEADER.encode() + b"\n"})
        second = _tick_and_ingest(instance, bucket, warehouse, cursor=first.cursor)
        [mat] = [
            r.asset_materialization
            for r in instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(["raw", "orders"])), limit=1
            ).records
        ]
    assert len(second.run_requests) == 1
    versions = sorted(_ledger(warehouse).values(), key=lambda e: e.updated_at)
    assert [(e.state, e.rows, e.reason) for e in versions] == [
        ("superseded", 0, None),
        ("loaded", 0, None),
    ]
    assert _rows_by_file(warehouse) == {}
    assert mat.partition == "orders/a.csv"
    assert mat.metadata["landfall/state"].value == "loaded"
    assert mat.metadata["dagster/row_count"].value == 0


@pytest.mark.parametrize(
    ("empty_files", "state", "reason"),
    [("load", "loaded", None), ("quarantine", "quarantined", "no rows: the file has no records")],
)
def test_a_jsonl_file_of_blank_lines_follows_the_zone_policy(
    bucket, warehouse, empty_files, state, reason
):
    zone = ZONES["events"].model_copy(update={"empty_files": empty_files})
    bucket.put({"events/blank.jsonl": b"\n  \n\n", "events/zero.jsonl": b""})
    with dg.instance_for_test() as instance:
        _tick_and_ingest(instance, bucket, warehouse, zone=zone)
    states = {key: e for (key, _), e in _ledger(warehouse).items()}
    blank = states["events/blank.jsonl"]
    assert (blank.state, blank.rows) == (state, 0)
    assert (blank.reason or "")[: len(reason or "")] == (reason or "")
    assert (blank.reason is None) == (reason is None)
    # 0 bytes is no export at all (not even a newline): quarantined whatever the policy
    assert (states["events/zero.jsonl"].state, states["events/zero.jsonl"].reason) == (
        "quarantined",
        "empty file (0 bytes)",
    )


def test_object_deleted_before_ingestion_is_recorded_not_crashed(bucket, warehouse):
    bucket.put({"orders/gone.csv": _orders(1), "orders/kept.csv": _orders(2)})
    with dg.instance_for_test() as instance:
        result = tick(instance, ZONES["orders"], bucket.landing, None)
        bucket.s3.delete_object(Bucket=bucket.landing.bucket, Key="orders/gone.csv")
        for request in result.run_requests:
            ingest(instance, ZONES["orders"], request.partition_key, bucket.landing, warehouse)
    states = {key: (e.state, e.reason) for (key, _), e in _ledger(warehouse).items()}
    assert states["orders/kept.csv"] == ("loaded", None)
    assert states["orders/gone.csv"][0] == "quarantined"
    assert "deleted" in states["orders/gone.csv"][1]


def test_restarted_sensor_resumes_from_its_cursor(bucket, warehouse):
    zone = ZONES["orders"].model_copy(
        update={"sensor": ZONES["orders"].sensor.model_copy(update={"max_objects_per_tick": 2})}
    )
    bucket.put({f"orders/{i}.csv": _orders(i) for i in range(5)})
    seen: list[str] = []
    with dg.instance_for_test() as instance:
        cursor = None
        for _ in range(4):  # each tick is a fresh sensor object: only the cursor carries over
            result = tick(instance, zone, bucket.landing, cursor)
            seen += [r.partition_key for r in result.run_requests]
            cursor = result.cursor
    assert sorted(seen) == [f"orders/{i}.csv" for i in range(5)]


@pytest.mark.timeout(300)
def test_a_thousand_small_files_across_capped_ticks(bucket):
    zone = ZONES["orders"].model_copy(
        update={"sensor": ZONES["orders"].sensor.model_copy(update={"max_objects_per_tick": 300})}
    )
    body = _orders(1)

    def put(i: int) -> None:
        bucket.s3.put_object(Bucket=bucket.landing.bucket, Key=f"orders/f{i:04d}.csv", Body=body)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, range(1000)))
    with dg.instance_for_test() as instance:
        cursor, ticks, run_keys = None, 0, []
        while True:
            result = tick(instance, zone, bucket.landing, cursor)
            if not result.run_requests:
                break
            assert len(result.run_requests) <= 300
            run_keys += [r.run_key for r in result.run_requests]
            cursor, ticks = result.cursor, ticks + 1
        partitions = instance.get_dynamic_partitions(zone.partitions_name)
    assert ticks == 4
    assert len(run_keys) == len(set(run_keys)) == 1000
    assert len(partitions) == len(set(partitions)) == 1000


def test_status_lists_each_object_once_in_one_state(
    bucket, warehouse, tmp_path, monkeypatch, capsys
):
    from devstack.cli import main

    bucket.put(
        {"orders/a.csv": _orders(1, 2), "orders/bad.csv": b"", "orders/later.csv": _orders(3)}
    )
    home = _dagster_home(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("LANDFALL_WAREHOUSE_PATH", warehouse.path)
    monkeypatch.setenv("LANDFALL_BUCKET", bucket.landing.bucket)
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        result = tick(instance, ZONES["orders"], bucket.landing, None)
        for request in result.run_requests:
            if request.partition_key != "orders/later.csv":
                ingest(instance, ZONES["orders"], request.partition_key, bucket.landing, warehouse)
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "pending" in next(x for x in out.splitlines() if x.endswith("orders/later.csv"))
    assert "loaded" in next(x for x in out.splitlines() if x.endswith("orders/a.csv"))
    assert "quarantined" in next(x for x in out.splitlines() if "orders/bad.csv" in x)
    assert "empty file" in next(x for x in out.splitlines() if "orders/bad.csv" in x)
    totals = [x for x in out.splitlines() if x.startswith("pending ")]
    assert totals == ["pending 1, loaded 1, quarantined 1"]
