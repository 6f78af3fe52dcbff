"""Listing new objects under a prefix with a compound cursor.

The cursor is (last-modified, object versions already seen at that exact timestamp). S3
timestamps have one-second resolution, so a plain "modified after" cursor skips objects written
in the same second as the last one seen (dagster #22892); keeping the versions (key@ETag) at the
boundary fixes that without ever returning a version twice, and an overwrite with new content
in that same second is still a new version.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from landing.objects import LandedObject, clean_etag
from landing.zones import ZoneSpec


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


@dataclass(frozen=True)
class IgnoredObject:
    """An object under a zone's prefix that no zone takes: never registered, never loaded."""

    zone: str  # the zone(s) whose prefix holds it, comma-separated
    key: str
    etag: str
    reason: str


def ignored_objects(client: Any, bucket: str, zones: Sequence[ZoneSpec]) -> list[IgnoredObject]:
    """Objects under the prefixes of `zones` (all in `bucket`) that match none of the zones
    whose prefix holds them, in key order (every object listed: see `scan_ignored`)."""
    return scan_ignored(client, bucket, zones)[0]


def scan_ignored(
    client: Any, bucket: str, zones: Sequence[ZoneSpec], max_listed: int | None = None
) -> tuple[list[IgnoredObject], bool]:
    """The ignored objects among the first `max_listed` objects listed (all when None), and
    whether the listing was complete. A bounded view stops early: a zone of a million objects
    is a thousand listing calls.

    Read from the bucket when asked (`landfall status`), not recorded by the sensors: a sensor
    may not write the warehouse's ledger, a cursor that remembered every skipped key would grow
    without bound, and the bucket itself is the truth in both sensor modes (an SQS-mode sensor
    never lists). It costs one listing of each prefix, what a list-mode sensor does per tick.
    Folder markers and the zones' quarantine copies are not objects anyone dropped.
    """
    prefixes = sorted({z.prefix for z in zones})
    roots = [p for p in prefixes if not any(p != q and p.startswith(q) for q in prefixes)]
    quarantine = tuple({z.quarantine_prefix for z in zones})
    ignored, listed = [], 0
    for root in roots:
        for page in _pages(client, bucket, root, None):
            if max_listed is not None and listed >= max_listed:
                return sorted(ignored, key=lambda o: o.key), False
            listed += len(page.get("Contents", []))
            for item in page.get("Contents", []):
                key = item["Key"]
                if key.endswith("/") or key.startswith(quarantine):
                    continue
                holding = [z for z in zones if key.startswith(z.prefix)]
                if any(z.matches(key) for z in holding):
                    continue
                patterns = ", ".join(f"{z.name} ({z.pattern})" for z in holding)
                ignored.append(
                    IgnoredObject(
                        zone=",".join(z.name for z in holding),
                        key=key,
                        etag=clean_etag(item["ETag"]),
                        reason=f"matches no pattern of zone{'s' * (len(holding) > 1)} {patterns}",
                    )
                )
    return sorted(ignored, key=lambda o: o.key), True
