"""`landfall status`: the ledger of landed objects as a bounded view (docs/cli.md has the JSON
contract).

At a million landed objects a full listing is neither readable nor cheap, so the default view
is counts by state plus the newest objects, one page at a time; `--all` lists everything.
The default view does not grow with the zone's history: counts are one grouped scan of the
ledger, the page is one ordered LIMIT query, and pending and failed objects come from the zone's
dynamic partition set, which retention keeps bounded (sensors/retention.py), checked against the
ledger in one query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from landing.zones import ZoneSpec

# the contract's states, in the order the text view counts them
STATES = ("pending", "loaded", "quarantined", "failed", "superseded")
DEFAULT_LIMIT = 50
# a bounded view lists at most this many objects of the bucket to find ignored ones
IGNORED_SCAN_LIMIT = 10_000
# unrecorded objects (newest first) whose run is looked up: beyond these they show as pending
FAILED_LOOKUPS = 1_000
FAILED_REASON = "its run failed; see the run in the Dagster UI, then re-run or re-upload"


@dataclass(frozen=True)
class ObjectStatus:
    """One object version in `landfall status --json`: these fields are the stable contract."""

    key: str
    etag: str | None  # None while Dagster holds the object and no run has recorded it
    zone: str
    partition: str
    state: str
    rows: int | None
    reason: str | None
    updated_at: str | None  # ISO 8601 (UTC) of the ledger row; None for pending/failed


@dataclass
class StatusView:
    objects: list[ObjectStatus]
    counts: dict[str, int]
    offset: int
    limit: int | None  # None: --all
    ignored: list[dict[str, str]] = field(default_factory=list)
    ignored_complete: bool = True
    ignored_error: str | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def next_offset(self) -> int | None:
        end = self.offset + len(self.objects)
        return end if self.limit is not None and end < self.total else None

    def to_json(self) -> dict[str, Any]:
        return {
            "objects": [asdict(o) for o in self.objects],
            "counts": dict(self.counts),
            "total": self.total,
            "page": {
                "offset": self.offset,
                "limit": self.limit,
                "returned": len(self.objects),
                "next_offset": self.next_offset,
            },
            "ignored": self.ignored,
            "ignored_complete": self.ignored_complete,
            "ignored_error": self.ignored_error,
        }


def unhandled_partitions(
    instance: Any, zone: ZoneSpec, unrecorded: Callable[[list[str]], set[str]]
) -> list[tuple[str, str]]:
    """(partition, state) of the zone's registered partitions that no run has recorded in the
    ledger, newest first: "failed" when the run that was to materialize it failed (the newest
    FAILED_LOOKUPS are looked up), else "pending".

    The partition set is bounded by retention; `unrecorded` (object keys -> those without a
    ledger row) is one query; failures are looked up for the unrecorded keys only. Dagster's
    partition status cache is not used: it is rebuilt from the asset's whole history whenever
    the partition set changes (sensors/retention.py)."""
    import dagster as dg

    from landing.objects import object_key_for

    partitions = instance.get_dynamic_partitions(zone.partitions_name)  # oldest first
    if not partitions:
        return []
    missing = unrecorded([object_key_for(p) for p in partitions])
    candidates = [p for p in reversed(partitions) if object_key_for(p) in missing]
    failed = _failed(instance, dg.AssetKey(zone.asset_key_path), candidates[:FAILED_LOOKUPS])
    return [(p, "failed" if p in failed else "pending") for p in candidates]


def _failed(instance: Any, asset_key: Any, partitions: list[str]) -> set[str]:
    """The partitions whose latest planned materialization belongs to a failed run: three
    set-wise queries (latest plans, their events, their runs), whatever the number."""
    import dagster as dg

    if not partitions:
        return set()
    planned = instance.get_latest_storage_id_by_partition(
        asset_key, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, set(partitions)
    )
    if not planned:
        return set()
    records = instance.get_event_records(
        dg.EventRecordsFilter(
            event_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
            asset_key=asset_key,
            storage_ids=list(planned.values()),
        ),
        limit=len(planned),
    )
    run_of_event = {r.storage_id: r.event_log_entry.run_id for r in records}
    run_ids = list(set(run_of_event.values()))
    failed_runs = {
        r.dagster_run.run_id
        for r in instance.get_run_records(dg.RunsFilter(run_ids=run_ids))
        if r.dagster_run.status == dg.DagsterRunStatus.FAILURE
    }
    return {p for p, storage_id in planned.items() if run_of_event.get(storage_id) in failed_runs}


def build_view(
    zones: Sequence[ZoneSpec],
    con: Any | None,
    home: Path,
    *,
    limit: int | None = DEFAULT_LIMIT,
    offset: int = 0,
) -> StatusView:
    """The status of `zones`: counts by state and the page [offset, offset+limit) of objects,
    unhandled ones (pending, failed) first, then ledger versions newest first.

    `con` is a read connection to the warehouse (None before anything loaded); `home` the
    Dagster home (no dagster.yaml: nothing is pending)."""
    from landing import ledger
    from landing.objects import object_key_for, partition_key_for

    names = [z.name for z in zones]
    one = names[0] if len(names) == 1 else None  # several zones: every zone in the ledger

    unhandled: list[ObjectStatus] = []
    if (home / "dagster.yaml").exists():
        import dagster as dg

        with dg.DagsterInstance.from_config(str(home)) as instance:
            for zone in zones:
                unrecorded = (
                    (lambda keys, z=zone.name: ledger.unrecorded_keys(con, z, keys))
                    if con is not None
                    else set
                )
                unhandled += [
                    ObjectStatus(
                        key=object_key_for(p),
                        etag=None,
                        zone=zone.name,
                        partition=p,
                        state=state,
                        rows=None,
                        reason=FAILED_REASON if state == "failed" else None,
                        updated_at=None,
                    )
                    for p, state in unhandled_partitions(instance, zone, unrecorded)
                ]
    counts = dict.fromkeys(STATES, 0)
    for o in unhandled:
        counts[o.state] += 1
    if con is not None:
        for state, n in ledger.state_counts(con, one).items():
            counts[state] = counts.get(state, 0) + n

    page = unhandled[offset:] if limit is None else unhandled[offset : offset + limit]
    room = None if limit is None else limit - len(page)
    if con is not None and (room is None or room > 0):
        ledger_offset = max(0, offset - len(unhandled))
        page += [
            ObjectStatus(
                key=e.object_key,
                etag=e.etag,
                zone=e.zone,
                partition=partition_key_for(e.object_key),
                state=e.state,
                rows=int(e.rows),
                reason=e.reason,
                updated_at=e.updated_at.isoformat(),
            )
            for e in ledger.newest(con, one, room, ledger_offset)
        ]
    return StatusView(objects=page, counts=counts, offset=offset, limit=limit)
