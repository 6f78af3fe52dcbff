"""Listing new objects under a prefix with a compound cursor.

The cursor is (last-modified, object versions already seen at that exact timestamp). S3
timestamps have one-second resolution, so a plain "modified after" cursor skips objects written
in the same second as the last one seen (dagster #22892); keeping the versions (key@ETag) at the
boundary fixes that without ever returning a version twice, and an overwrite with new content
in that same second is still a new version.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from landing.objects import LandedObject, clean_etag


@dataclass(frozen=True)
class ListingCursor:
    last_modified: float = 0.0  # epoch seconds of the newest object handed out
    versions_at_last: frozenset[str] = field(default_factory=frozenset)  # key@etag
    start_after: str | None = None  # for lexically ordered keys only

    def serialize(self) -> str:
        return json.dumps(
            {
                "ts": self.last_modified,
                "versions": sorted(self.versions_at_last),
                "after": self.start_after,
            }
        )

    @classmethod
    def parse(cls, raw: str | None) -> ListingCursor:
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls(float(data["ts"]), frozenset(data["versions"]), data.get("after"))

    def is_new(self, version: str, last_modified: float) -> bool:
        return last_modified > self.last_modified or (
            last_modified == self.last_modified and version not in self.versions_at_last
        )


def _pages(client: Any, bucket: str, prefix: str, start_after: str | None) -> Iterator[dict]:
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if start_after:
        kwargs["StartAfter"] = start_after
    yield from client.get_paginator("list_objects_v2").paginate(**kwargs)


def list_new_objects(
    client: Any,
    bucket: str,
    prefix: str,
    zone: str,
    cursor: ListingCursor,
    max_objects: int,
    accept: Callable[[str], bool],
    lexical_keys: bool = False,
) -> tuple[list[LandedObject], ListingCursor]:
    """New objects in (last-modified, key) order, at most `max_objects`; the rest wait for the
    next call. Returns them with the advanced cursor."""
    fresh: list[LandedObject] = []
    start_after = cursor.start_after if lexical_keys else None
    for page in _pages(client, bucket, prefix, start_after):
        for item in page.get("Contents", []):
            key = item["Key"]
            modified = item["LastModified"].astimezone(UTC).timestamp()
            if not accept(key):
                continue
            obj = LandedObject(
                zone=zone,
                key=key,
                etag=clean_etag(item["ETag"]),
                size=int(item["Size"]),
                last_modified=datetime.fromtimestamp(modified, UTC),
            )
            if cursor.is_new(obj.run_key, modified):
                fresh.append(obj)
    fresh.sort(key=lambda o: (o.last_modified, o.key))
    taken = fresh[:max_objects]
    if not taken:
        return [], cursor
    newest = taken[-1].last_modified.timestamp()
    at_newest = {o.run_key for o in taken if o.last_modified.timestamp() == newest}
    if newest == cursor.last_modified:
        at_newest |= cursor.versions_at_last
    after = max([o.key for o in taken] + ([cursor.start_after] if cursor.start_after else []))
    return taken, ListingCursor(newest, frozenset(at_newest), after if lexical_keys else None)
