"""Drive the ingestion definitions the way the daemon does: sensor tick, then partition runs."""

from __future__ import annotations

import bz2
import gzip
import json
from typing import Any

import dagster as dg

from landing.bucket import LandingBucket
from landing.warehouse import DuckDBWarehouse
from landing.zones import ZoneSpec, load_zones
from orchestration.components.landing_zones import (
    build_zone_assets,
    zone_job_name,
    zone_partitions,
)
from sensors.landing import build_landing_sensor

ZONES = {zone.name: zone for zone in load_zones()}
ORDERS_HEADER = "order_id,customer_id,order_ts,amount,status\n"
# the orders zone's max_file_bytes in the bad-file tests: small, so "too big" is cheap to build
FILE_CLASS_LIMIT = 2_000


def orders_csv(*ids: int) -> bytes:
    return (
        ORDERS_HEADER
        + "".join(f"{i},{i % 7 + 1},2026-10-0{i % 9 + 1} 10:00:00,{i}.50,placed\n" for i in ids)
    ).encode()


def bad_file_classes() -> dict[str, tuple[bytes, str]]:
    """One object per class of bad file: key -> (body, a part of its quarantine reason), for
    the orders zone with max_file_bytes FILE_CLASS_LIMIT; `strict-orders/` is the same zone
    with `empty_files: quarantine`."""
    bad = {
        "orders/empty.csv": (b"", "empty file"),
        "orders/latin1.csv": (
            ORDERS_HEADER.encode() + "1,1,2026-10-01 10:00:00,1.0,caf\xe9\n".encode("latin-1"),
            "not valid UTF-8",
        ),
        "orders/ragged.csv": (
            ORDERS_HEADER.encode() + b"1,1,2026-10-01 10:00:00\n",
            "malformed CSV",
        ),
        "orders/missing.csv": (b"order_id,amount\n1,2.0\n", "missing contract columns"),
        "orders/types.csv": (
            ORDERS_HEADER.encode() + b"x1,1,2026-10-01 10:00:00,1.0,placed\n",
            "column order_id",
        ),
        "orders/huge.csv": (orders_csv(*range(1, 200)), "over the zone limit"),
        # a lenient parser folds every later record into one value and "loads" 3 rows
        "orders/open-quote.csv": (
            orders_csv(1, 2).replace(b"2.50,placed", b'2.50,"never closed')
            + orders_csv(3, 4, 5)[len(ORDERS_HEADER) :],
            "a quote opened in the record on line 3 never closes",
        ),
        # compression is named: what Landfall cannot decompress, and what it found inside
        "orders/zstd.csv": (
            b"\x28\xb5\x2f\xfd" + b"\x00" * 16,
            "zstd-compressed (detected by its first bytes): Landfall decompresses gzip",
        ),
        "orders/gzip-latin1.csv.gz": (
            gzip.compress(
                ORDERS_HEADER.encode() + "1,1,2026-10-01 10:00:00,1.0,caf\xe9\n".encode("latin-1")
            ),
            "(in its gzip-decompressed content)",
        ),
        "orders/truncated.csv.gz": (
            gzip.compress(orders_csv(1, 2, 3))[:-12],
            "gzip-compressed but",
        ),
        # small compressed, over the limit once decompressed
        "orders/bomb.csv.gz": (
            gzip.compress(ORDERS_HEADER.encode() + b"1,1,2026-10-01 10:00:00,1.50,placed\n" * 100),
            f"gzip-compressed file decompresses to over the zone limit of {FILE_CLASS_LIMIT} bytes",
        ),
        "orders/utf16.csv": (orders_csv(1).decode().encode("utf-16"), "UTF-16 little-endian"),
    }
    bad["strict-orders/header-only.csv"] = (
        ORDERS_HEADER.encode(),
        "no rows: the file has a header",
    )
    return bad


def good_file_classes() -> dict[str, tuple[bytes, int]]:
    """Awkward but valid objects of the orders zone: key -> (body, rows it loads)."""
    return {
        "orders/good.csv": (orders_csv(1, 2), 2),
        "orders/bom.csv": (b"\xef\xbb\xbf" + orders_csv(3, 4), 2),
        "orders/header-only.csv": (ORDERS_HEADER.encode(), 0),
        "orders/gzip-named-plain.csv": (gzip.compress(orders_csv(5, 6)), 2),
        "orders/gzipped.csv.gz": (gzip.compress(b"\xef\xbb\xbf" + orders_csv(7, 8, 9)), 3),
        "orders/bzipped.csv.bz2": (bz2.compress(orders_csv(10)), 1),
    }


def assert_quarantined_with_reasons(
    bucket: Any, entries: dict[str, Any], bad: dict[str, tuple[bytes, str]]
) -> None:
    """Each bad object is quarantined in the ledger (`entries`: key -> its entry) and in S3
    (a copy beside a reason document), both naming its reason."""
    for key, (_, reason) in bad.items():
        assert entries[key].state == "quarantined", key
        assert reason in entries[key].reason, (key, entries[key].reason)
        [copy] = [
            o["Key"]
            for o in bucket.s3.list_objects_v2(
                Bucket=bucket.landing.bucket, Prefix=f"_quarantine/{key}@"
            )["Contents"]
            if o["Key"].endswith(".reason.json")
        ]
        reason_doc = json.loads(
            bucket.s3.get_object(Bucket=bucket.landing.bucket, Key=copy)["Body"].read()
        )
        assert reason_doc["key"] == key and reason in reason_doc["reason"]


def tick(
    instance: dg.DagsterInstance,
    zone: ZoneSpec,
    landing: LandingBucket,
    cursor: str | None,
    runs: str = "per_file",
) -> dg.SensorResult:
    """One sensor evaluation; applies its partition requests to the instance like the daemon.

    By default one partition per run (tests/ops covers per_tick); `runs="per_tick"` asks for a
    run per tick (a partition range)."""
    partitions = zone_partitions(zone)
    sensor = build_landing_sensor(zone, zone_job_name(zone), partitions, runs=runs)
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"landing": landing}
    )
    result = sensor(context)
    for request in result.dynamic_partitions_requests or []:
        if isinstance(request, dg.DeleteDynamicPartitionsRequest):
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
        else:
            instance.add_dynamic_partitions(
                request.partitions_def_name, list(request.partition_keys)
            )
    return result


def ingest(
    instance: dg.DagsterInstance,
    zone: ZoneSpec,
    partition_key: str,
    landing: LandingBucket,
    warehouse: DuckDBWarehouse,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [build_zone_assets(zone)],
        partition_key=partition_key,
        instance=instance,
        resources={"landing": landing, "warehouse": warehouse},
        raise_on_error=True,
    )
