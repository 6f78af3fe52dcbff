"""Files dropped into moto's S3 (real HTTP) become raw rows, once, with their file key."""

from __future__ import annotations

import json
import time

import dagster as dg

from devstack.burst import wait_until
from landing import ledger
from landing.samples import sample_files
from tests.landing.helpers import ZONES, ingest, tick


def _count(warehouse, sql: str, params=()) -> int:
    with warehouse.connect(read_only=True) as con:
        return con.execute(sql, list(params)).fetchone()[0]


def test_every_zone_loads_its_sample_files_with_provenance(bucket, warehouse):
    files = sample_files(customers=20, orders=60, events=40, files_per_zone=2)
    bucket.put(files)
    with dg.instance_for_test() as instance:
        for zone in ZONES.values():
            result = tick(instance, zone, bucket.landing, None)
            keys = sorted(r.partition_key for r in result.run_requests)
            assert keys == sorted(k for k in files if k.startswith(zone.prefix))
            for key in keys:
                run = ingest(instance, zone, key, bucket.landing, warehouse)
                mats = run.asset_materializations_for_node(f"ingest_{zone.name}")
                main = next(m for m in mats if m.asset_key.path == zone.asset_key_path)
                assert main.metadata["landfall/file"].value == f"s3://{bucket.landing.bucket}/{key}"
                assert main.metadata["landfall/state"].value == "loaded"

    assert _count(warehouse, "select count(*) from raw.orders") == 60
    assert _count(warehouse, "select count(*) from raw.customers") == 20
    assert _count(warehouse, "select count(*) from raw.events") == 40
    expected_items = sum(
        len(json.loads(line)["items"])
        for k, body in files.items()
        if k.startswith("events/")
        for line in body.decode().splitlines()
    )
    assert _count(warehouse, "select count(*) from raw.events__items") == expected_items
    # every raw row says which file it came from
    assert _count(warehouse, "select count(distinct _landfall_file) from raw.orders") == 2
    assert (
        _count(
            warehouse,
            "select count(*) from raw.events__items where _landfall_file like 'events/%'",
        )
        == expected_items
    )
    with warehouse.connect(read_only=True) as con:
        states = {(e.zone, e.state) for e in ledger.entries(con)}
        types = dict(
            con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema='raw' and table_name='orders'"
            ).fetchall()
        )
    assert states == {("orders", "loaded"), ("customers", "loaded"), ("events", "loaded")}
    assert types["order_id"] == "BIGINT" and types["amount"] == "DECIMAL(18,2)"


def test_same_file_twice_does_not_double_rows(bucket, warehouse):
    zone = ZONES["orders"]
    body = sample_files(orders=30, files_per_zone=1)["orders/2026-11-01/orders_0001.csv"]
    bucket.put({"orders/a.csv": body})
    with dg.instance_for_test() as instance:
        first = tick(instance, zone, bucket.landing, None)
        ingest(instance, zone, "orders/a.csv", bucket.landing, warehouse)
        # a later upload: LastModified has whole seconds, and a same-version upload within the
        # second the cursor already holds is not listed again (sensors/listing.py)
        landed = bucket.s3.head_object(Bucket=bucket.landing.bucket, Key="orders/a.csv")
        later = int(landed["LastModified"].timestamp()) + 1
        wait_until(lambda: time.time() >= later, 5, "the second after the first upload")
        bucket.put({"orders/a.csv": body})  # same key, same content, later upload
        second = tick(instance, zone, bucket.landing, first.cursor)
        # same version -> same run key: the daemon refuses to launch it again
        assert [r.run_key for r in second.run_requests] == [r.run_key for r in first.run_requests]
        ingest(instance, zone, "orders/a.csv", bucket.landing, warehouse)  # a manual re-run
    assert _count(warehouse, "select count(*) from raw.orders") == 30
    with warehouse.connect(read_only=True) as con:
        assert [(e.object_key, e.state, e.rows) for e in ledger.entries(con)] == [
            ("orders/a.csv", "loaded", 30)
        ]


def test_bad_file_is_quarantined_and_the_rest_of_the_tick_loads(bucket, warehouse):
    zone = ZONES["orders"]
    good = sample_files(orders=10, files_per_zone=1)["orders/2026-11-01/orders_0001.csv"]
    bad = b"order_id,customer_id,order_ts,amount,status\n1,2,not-a-date,3.50,placed\n"
    bucket.put({"orders/good.csv": good, "orders/bad.csv": bad})
    with dg.instance_for_test() as instance:
        result = tick(instance, zone, bucket.landing, None)
        for request in result.run_requests:
            run = ingest(instance, zone, request.partition_key, bucket.landing, warehouse)
            checks = {c.check_name: c for c in run.get_asset_check_evaluations()}
            assert checks["file_accepted"].passed == (request.partition_key == "orders/good.csv")
            assert checks["schema_change"].passed  # in the same run; the bad file adds nothing
    assert _count(warehouse, "select count(*) from raw.orders") == 10
    with warehouse.connect(read_only=True) as con:
        entry = {e.object_key: e for e in ledger.entries(con)}["orders/bad.csv"]
    assert entry.state == "quarantined"
    assert "column order_ts" in entry.reason and "not-a-date" in entry.reason
    listed = bucket.s3.list_objects_v2(Bucket=bucket.landing.bucket, Prefix="_quarantine/")
    keys = [o["Key"] for o in listed["Contents"]]
    reason_key = next(k for k in keys if k.endswith(".reason.json"))
    reason = json.loads(
        bucket.s3.get_object(Bucket=bucket.landing.bucket, Key=reason_key)["Body"].read()
    )
    assert reason["key"] == "orders/bad.csv" and "order_ts" in reason["reason"]
    # nothing is deleted from the landing prefix
    landed = bucket.s3.list_objects_v2(Bucket=bucket.landing.bucket, Prefix="orders/")
    assert {o["Key"] for o in landed["Contents"]} == {"orders/good.csv", "orders/bad.csv"}


def test_raw_materializations_carry_the_column_schema_read_after_the_write(bucket, warehouse):
    zone = ZONES["orders"]
    body = sample_files(orders=5, files_per_zone=1)["orders/2026-11-01/orders_0001.csv"]
    bucket.put({"orders/s.csv": body})
    with dg.instance_for_test() as instance:
        tick(instance, zone, bucket.landing, None)
        run = ingest(instance, zone, "orders/s.csv", bucket.landing, warehouse)
    [mat] = run.asset_materializations_for_node("ingest_orders")
    columns = {c.name: c.type for c in mat.metadata["dagster/column_schema"].value.columns}
    assert columns["order_id"] == "BIGINT" and columns["amount"] == "DECIMAL(18,2)"
    assert columns["_landfall_file"] == "VARCHAR"
