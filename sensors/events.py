"""Event mode: S3 event notifications delivered to an SQS queue; the bucket is never listed.

Delivery is at least once. Messages are deleted only on the tick *after* the one that turned
them into run requests: a tick's cursor is stored with its result, so seeing that cursor again
proves the result was committed. A message redelivered before then yields the same run key
(key@ETag), which Dagster launches once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from landing.objects import LandedObject, clean_etag

_BATCH = 10  # SQS receives at most 10 messages per call


@dataclass(frozen=True)
class QueueCursor:
    pending_acks: tuple[str, ...] = field(default_factory=tuple)  # receipt handles

    def serialize(self) -> str:
        return json.dumps({"ack": list(self.pending_acks)})

    @classmethod
    def parse(cls, raw: str | None) -> QueueCursor:
        return cls(tuple(json.loads(raw)["ack"])) if raw else cls()


def _records(body: str) -> Iterator[dict[str, Any]]:
    try:
        message = json.loads(body)
    except json.JSONDecodeError:
        return
    if "Message" in message and "Records" not in message:  # delivered through SNS
        try:
            message = json.loads(message["Message"])
        except (TypeError, json.JSONDecodeError):
            return
    yield from message.get("Records") or []  # s3:TestEvent has none


def objects_from_records(
    records: list[dict[str, Any]], bucket: str, zone: str, accept: Callable[[str], bool]
) -> list[LandedObject]:
    """ObjectCreated records of `bucket` whose key the zone accepts, deduplicated."""
    seen: dict[str, LandedObject] = {}
    for record in records:
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record.get("s3") or {}
        if (s3.get("bucket") or {}).get("name") != bucket:
            continue
        item = s3.get("object") or {}
        key = unquote_plus(item.get("key", ""))  # event keys are URL-encoded
        if not key or not accept(key):
            continue
        obj = LandedObject(
            zone=zone,
            key=key,
            etag=clean_etag(str(item.get("eTag") or item.get("etag") or "")),
            size=int(item.get("size") or 0),
            last_modified=datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00")),
        )
        seen.setdefault(obj.run_key, obj)
    return list(seen.values())


def drain_queue(
    sqs: Any,
    queue_url: str,
    bucket: str,
    zone: str,
    accept: Callable[[str], bool],
    cursor: QueueCursor,
    max_objects: int,
) -> tuple[list[LandedObject], QueueCursor]:
    """Acknowledge the previous tick's messages, then receive up to `max_objects` records."""
    for start in range(0, len(cursor.pending_acks), _BATCH):
        handles = cursor.pending_acks[start : start + _BATCH]
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles)],
        )
    records: list[dict[str, Any]] = []
    acks: list[str] = []
    while len(acks) < max_objects:
        batch = min(_BATCH, max_objects - len(acks))
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=batch, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            records.extend(_records(message["Body"]))
            acks.append(message["ReceiptHandle"])
    return objects_from_records(records, bucket, zone, accept), QueueCursor(tuple(acks))
