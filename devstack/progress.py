"""What the instance and the warehouse say about a drop: progress while waiting, the summary
after. Read-only: opens the warehouse only when no run is writing it."""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg

from landing.identifiers import qualified
from landing.warehouse import DuckDBWarehouse
from landing.zones import ZoneSpec

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
LAYERS = ("raw", "staging", "intermediate", "marts", "ml")


@dataclass
class Progress:
    pending: int
    loaded: int
    quarantined: int
    runs_in_flight: int
    runs_failed: int
    stale_downstream: list[str] = field(default_factory=list)
    # objects already done inside ingestion runs still in flight (a batch run materializes its
    # partitions when its step ends; its log says loaded/quarantined per object as it goes)
    done_in_running: int = 0

    @property
    def done(self) -> bool:
        return self.pending == 0 and self.runs_in_flight == 0 and not self.stale_downstream

    def line(self) -> str:
        return (
            f"files pending {self.pending:>4} ({self.done_in_running:>4} done in running runs)"
            f"  loaded {self.loaded:>4}  quarantined "
            f"{self.quarantined:>3}  runs in flight {self.runs_in_flight:>2}  failed "
            f"{self.runs_failed:>2}  downstream stale {len(self.stale_downstream):>2}"
        )


def _latest_states(instance: dg.DagsterInstance, zone: ZoneSpec, keys: list[str]) -> dict[str, str]:
    """Partition key -> landfall/state of its latest materialization."""
    asset_key = dg.AssetKey(zone.asset_key_path)
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=keys), limit=len(keys) * 4
    ).records
    states: dict[str, str] = {}
    for record in sorted(records, key=lambda r: r.storage_id):
        mat = record.asset_materialization
        state = mat.metadata.get("landfall/state") if mat and mat.partition else None
        if state is not None:
            states[mat.partition] = str(state.value)
    return states


def progress(
    instance: dg.DagsterInstance,
    zones: list[ZoneSpec],
    dropped: list[str],
    downstream: list[dg.AssetKey],
) -> Progress:
    states: dict[str, str] = {}
    for zone in zones:
        keys = [k for k in dropped if zone.matches(k)]
        if keys:
            states.update(_latest_states(instance, zone, keys))
    loaded = sum(1 for s in states.values() if s == "loaded")
    quarantined = sum(1 for s in states.values() if s == "quarantined")
    running = instance.get_runs(dg.RunsFilter(statuses=IN_FLIGHT))
    in_flight = len(running)
    failed = len(instance.get_run_ids(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE])))
    newest_raw = max(
        (
            e.timestamp
            for zone in zones
            for key in zone.table_keys
            if (e := instance.get_latest_materialization_event(dg.AssetKey(key)))
        ),
        default=0.0,
    )
    stale = []
    for key in downstream:
        event = instance.get_latest_materialization_event(key)
        if event is None or event.timestamp < newest_raw:
            stale.append(key.to_user_string())
    return Progress(
        pending=len(dropped) - len(states),
        loaded=loaded,
        quarantined=quarantined,
        runs_in_flight=in_flight,
        runs_failed=failed,
        stale_downstream=stale,
        done_in_running=sum(
            _objects_done(instance, r.run_id) for r in running if r.job_name.startswith("ingest_")
        ),
    )


_DONE_PREFIXES = ("loaded s3://", "quarantined s3://")
_log_cursors: dict[str, tuple[str | None, int]] = {}  # run id -> (event cursor, objects done)


def _objects_done(instance: dg.DagsterInstance, run_id: str) -> int:
    """Objects an ingestion run has logged as done so far, read incrementally."""
    cursor, done = _log_cursors.get(run_id, (None, 0))
    while True:
        batch = instance.event_log_storage.get_records_for_run(run_id, cursor=cursor, limit=1000)
        # a run logs its objects' lines several to an event, a line each
        done += sum(
            1
            for r in batch.records
            for line in (r.event_log_entry.user_message or "").splitlines()
            if line.startswith(_DONE_PREFIXES)
        )
        cursor = batch.cursor
        if not batch.has_more:
            break
    _log_cursors[run_id] = (cursor, done)
    return done


def table_rows(warehouse: DuckDBWarehouse) -> list[tuple[str, str, int]]:
    """(layer, table, rows) for every table and view of our layers."""
    with warehouse.connect(read_only=True) as con:
        names = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN (SELECT unnest(?::VARCHAR[])) ORDER BY 1, 2",
            [list(LAYERS)],
        ).fetchall()
        return [
            (
                schema,
                table,
                con.execute(f"SELECT count(*) FROM {qualified(schema, table)}").fetchone()[0],
            )
            for schema, table in names
        ]
