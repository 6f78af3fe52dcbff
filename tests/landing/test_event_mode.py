"""SQS event mode: S3 notifications drained from a queue, deduplicated, acknowledged only after
the tick that used them; the bucket is never listed."""

from __future__ import annotations

import json

import boto3
import dagster as dg

from sensors.events import QueueCursor
from tests.landing.helpers import ZONES, tick

QUEUE_ENV = "LANDFALL_TEST_ORDERS_QUEUE_URL"


def _event_zone():
    zone = ZONES["orders"]
    sensor = zone.sensor.model_copy(update={"mode": "sqs", "queue_url_env": QUEUE_ENV})
    return zone.model_copy(update={"sensor": sensor})


def _queue(bucket, monkeypatch) -> tuple[object, str]:
    sqs = boto3.client("sqs", endpoint_url=bucket.settings.s3_endpoint, region_name="us-east-1")
    url = sqs.create_queue(QueueName=bucket.landing.bucket)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    bucket.s3.put_bucket_notification_configuration(
        Bucket=bucket.landing.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    monkeypatch.setenv(QUEUE_ENV, url)
    return sqs, url


class NoListing:
    """Fails the test if the sensor lists the bucket in event mode."""

    def __getattr__(self, name: str):
        raise AssertionError(f"event mode called S3 {name}")


def test_event_mode_requests_each_version_once_and_acks_after_commit(bucket, monkeypatch):
    sqs, url = _queue(bucket, monkeypatch)
    zone = _event_zone()
    bucket.put(
        {
            "orders/a b.csv": b"order_id\n1\n",
            "orders/b.csv": b"order_id\n2\n",
            "customers/x.csv": b"customer_id\n1\n",
        }
    )
    # at-least-once delivery: the same notification arrives twice. (Peek with a visibility
    # timeout of 0 so every message stays on the queue.)
    bodies: set[str] = set()
    while len(bodies) < 4:  # SQS returns "up to" 10 messages per call
        peeked = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        bodies |= {m["Body"] for m in peeked.get("Messages", [])}
    duplicate = next(b for b in bodies if '"key": "orders%2Fb.csv"' in b)  # keys are URL-encoded
    sqs.send_message(QueueUrl=url, MessageBody=duplicate)
    monkeypatch.setattr(type(bucket.landing), "client", lambda self: NoListing())

    with dg.instance_for_test() as instance:
        result = tick(instance, zone, bucket.landing, None)
        keys = sorted(r.partition_key for r in result.run_requests)
        assert keys == ["orders/a b.csv", "orders/b.csv"]  # deduplicated, other prefix ignored
        # s3:TestEvent (sent when notifications are configured) + 3 events + the duplicate
        assert len(QueueCursor.parse(result.cursor).pending_acks) == 5
        # nothing is deleted until the next tick proves this result was committed
        attrs = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
        )
        assert int(attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"]) == 5
        second = tick(instance, zone, bucket.landing, result.cursor)
        assert second.run_requests == []
        attrs = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        assert attrs == {
            "ApproximateNumberOfMessages": "0",
            "ApproximateNumberOfMessagesNotVisible": "0",
        }
        # an overwrite is a new version: a new run key for the same partition
        bucket.put({"orders/b.csv": b"order_id\n3\n"})
        third = tick(instance, zone, bucket.landing, second.cursor)
        [request] = third.run_requests
        assert request.partition_key == "orders/b.csv"
        old = next(r for r in result.run_requests if r.partition_key == "orders/b.csv")
        assert request.run_key != old.run_key
        assert json.loads(third.cursor)["ack"]
