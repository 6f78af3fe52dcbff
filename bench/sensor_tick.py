"""Sensor tick time with N objects already in the prefix and 100 new, against a baseline tick
that lists with dagster_aws's `get_objects` (the whole prefix, every tick), in the same run."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from dagster_aws.s3.sensor import get_objects

from bench.results import record, wait_until_quiet
from landing.zones import load_zones
from sensors.listing import ListingCursor, list_new_objects

NEW = 100


def _key(i: int) -> str:
    # date-prefixed, written in order: the zone can declare `lexical_keys: true`
    return f"orders/2026-11-{1 + i // 40_000:02d}/part-{i:07d}.csv"


def _put(s3, bucket: str, start: int, stop: int) -> None:
    def one(i: int) -> None:
        s3.put_object(Bucket=bucket, Key=_key(i), Body=b"order_id\n1\n")

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(one, range(start, stop)))


def run(s3, bucket: str, sizes: tuple[int, ...] = (1_000, 10_000, 100_000)) -> None:
    zone = next(z for z in load_zones() if z.name == "orders")
    have = 0
    for size in sizes:
        print(f"sensor tick with {size} objects in the prefix and {NEW} new")
        _put(s3, bucket, have, size)
        # the cursor after the previous tick: everything up to `size` has been seen
        last = s3.head_object(Bucket=bucket, Key=_key(size - 1))["LastModified"].timestamp()
        cursor = ListingCursor(last_modified=last, start_after=_key(size - 1))
        _put(s3, bucket, size, size + NEW)
        have = size + NEW
        wait_until_quiet(f"sensor tick {size // 1000}k")  # the uploads above load the machine

        started = time.perf_counter()
        objects, _ = list_new_objects(
            s3, bucket, zone.prefix, zone.name, cursor, 10_000, zone.matches, lexical_keys=True
        )
        ours = time.perf_counter() - started
        assert len(objects) == NEW, len(objects)

        started = time.perf_counter()
        baseline_objects = get_objects(
            bucket=bucket, prefix=zone.prefix, since_key=_key(size - 1), client=s3
        )
        baseline = time.perf_counter() - started
        assert len(baseline_objects) >= NEW

        ratio = baseline / ours
        label = f"{size // 1000}k"
        print(
            f"  ours {ours * 1000:.0f} ms, get_objects {baseline * 1000:.0f} ms, ratio {ratio:.1f}x"
        )
        record(
            f"sensor tick {label}",
            f"{ours * 1000:.0f} ms",
            f"{baseline * 1000:.0f} ms",
            ratio,
            "≤ 0.1× baseline at 100k (ratio ≥ 10)",
        )
