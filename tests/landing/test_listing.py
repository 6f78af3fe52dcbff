"""The compound cursor: objects written in the same second are neither skipped nor repeated,
the per-tick cap carries the rest over, and a restart resumes from the persisted cursor."""

from __future__ import annotations

from sensors.listing import ListingCursor, list_new_objects


def _list(bucket, cursor: ListingCursor, cap: int = 100):
    return list_new_objects(
        bucket.landing.client(),
        bucket.landing.bucket,
        "orders/",
        "orders",
        cursor,
        cap,
        accept=lambda key: key.endswith(".csv"),
    )


def test_same_second_writes_are_neither_skipped_nor_repeated(bucket):
    bucket.put({f"orders/{i:03d}.csv": b"x" for i in range(3)})
    first, cursor = _list(bucket, ListingCursor())
    # more objects land, most likely within the same second as the first batch
    bucket.put({f"orders/{i:03d}.csv": b"x" for i in range(3, 6)})
    second, cursor = _list(bucket, ListingCursor.parse(cursor.serialize()))
    third, _ = _list(bucket, cursor)
    keys = [o.key for o in first + second]
    assert sorted(keys) == [f"orders/{i:03d}.csv" for i in range(6)]
    assert len(set(keys)) == 6 and third == []


def test_cap_carries_the_rest_to_the_next_tick(bucket):
    bucket.put({f"orders/{i:03d}.csv": b"x" for i in range(25)})
    bucket.put({"orders/ignored.json": b"{}"})
    seen, cursor, ticks = [], ListingCursor(), 0
    while True:
        batch, cursor = _list(bucket, cursor, cap=10)
        if not batch:
            break
        assert len(batch) <= 10
        seen += [o.key for o in batch]
        ticks += 1
    assert ticks == 3 and sorted(seen) == [f"orders/{i:03d}.csv" for i in range(25)]


def test_overwrite_with_new_content_is_listed_again_with_its_new_etag(bucket):
    bucket.put({"orders/a.csv": b"v1"})
    first, cursor = _list(bucket, ListingCursor())
    bucket.put({"orders/a.csv": b"v2"})
    second, cursor = _list(bucket, cursor)
    again, _ = _list(bucket, cursor)
    # listed once more, as a new version, whether or not the overwrite fell in the same second
    assert [o.key for o in second] == ["orders/a.csv"] and again == []
    assert second[0].etag != first[0].etag and second[0].run_key != first[0].run_key
