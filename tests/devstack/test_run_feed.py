"""`landfall dev`'s terminal: each ended run as one or two lines a user reads (what a landing run
loaded or quarantined and why, what failed and where to look), history skipped."""

from __future__ import annotations

import dagster as dg

from devstack.progress import RunFeed
from tests.landing.helpers import ZONES, ingest, tick

HEADER = b"order_id,customer_id,order_ts,amount,status\n"


@dg.asset(key=["staging", "broken"])
def broken() -> None:
    raise RuntimeError("boom: the model's SQL does not compile\nsecond line")


def test_the_feed_says_what_landed_what_was_quarantined_and_what_failed(bucket, warehouse):
    zone = ZONES["orders"]
    feed = RunFeed("http://127.0.0.1:4000/")
    with dg.instance_for_test() as instance:
        dg.materialize([broken], instance=instance, raise_on_error=False)
        feed.skip_existing(instance)  # ended before the feed started: not printed
        assert feed.poll(instance) == []

        bucket.put(
            {
                "orders/good.csv": HEADER + b"1,10,2024-05-01 10:00:00,10.50,placed\n",
                "orders/bad.csv": HEADER + b"2,10,not-a-date,1.00,placed\n",
            }
        )
        tick(instance, zone, bucket.landing, None)
        ingest(instance, zone, "orders/good.csv", bucket.landing, warehouse)
        ingest(instance, zone, "orders/bad.csv", bucket.landing, warehouse)
        failed = dg.materialize([broken], instance=instance, raise_on_error=False)

        lines = feed.poll(instance)
        assert feed.poll(instance) == []  # each run once
    s3 = f"s3://{bucket.landing.bucket}"
    assert lines == [
        "raw/orders: all 1 files passed validation and their contract",
        f"raw/orders: 1 of 1 files quarantined: {s3}/orders/bad.csv: column order_ts: 1 value(s) "
        "are not timestamp, e.g. 'not-a-date' on line 2",
        f"FAILED run {failed.run_id[:8]}: RuntimeError: boom: the model's SQL does not compile "
        f"-- http://127.0.0.1:4000/runs/{failed.run_id}",
    ]
