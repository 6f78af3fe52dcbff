"""Quarantine: copy a bad file beside a JSON reason; never delete from the landing prefix."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from landing.objects import LandedObject
from landing.zones import ZoneSpec


def quarantine_key(zone: ZoneSpec, obj: LandedObject) -> str:
    return f"{zone.quarantine_prefix}{obj.key}@{obj.etag}"


def quarantine_object(
    client: Any, bucket: str, zone: ZoneSpec, obj: LandedObject, reason: str, at: datetime
) -> str:
    """Copy the object and write `<copy>.reason.json`; returns the copy's key."""
    target = quarantine_key(zone, obj)
    client.copy_object(Bucket=bucket, Key=target, CopySource={"Bucket": bucket, "Key": obj.key})
    client.put_object(
        Bucket=bucket,
        Key=f"{target}.reason.json",
        Body=json.dumps(
            {
                "zone": zone.name,
                "key": obj.key,
                "etag": obj.etag,
                "size": obj.size,
                "reason": reason,
                "quarantined_at": at.isoformat(),
            },
            indent=2,
        ).encode(),
        ContentType="application/json",
    )
    return target
