"""What the instance and the warehouse say about a drop: progress while waiting, the summary
after. Read-only: opens the warehouse only when no run is writing it."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field

import dagster as dg

from landing.identifiers import qualified
from landing.warehouse import LandingWarehouse
from landing.zones import ZoneSpec

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
# the tag Dagster's run retries put on a failed run (a run tag, read as a string)
WILL_RETRY_TAG = "dagster/will_retry"
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
    # a failed run that run retries will launch again (Dagster tags it dagster/will_retry when
    # it fails) is not a failure of the cascade; its last retry, if it fails too, is
    failed = sum(
        1
        for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
        if run.tags.get(WILL_RETRY_TAG) != "true"
    )
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
        done += sum(
            1
            for r in batch.records
            if (r.event_log_entry.user_message or "").startswith(_DONE_PREFIXES)
        )
        cursor = batch.cursor
        if not batch.has_more:
            break
    _log_cursors[run_id] = (cursor, done)
    return done


def watch(
    instance: dg.DagsterInstance,
    zones: list[ZoneSpec],
    dropped: list[str],
    downstream: list[dg.AssetKey],
    daemon: subprocess.Popen,
    timeout_s: float,
    started: float,
) -> tuple[Progress, str | None]:
    """Print progress until the drop is done, a run failed, the daemon exited or `timeout_s`
    passed; returns the last progress and, unless it ended done or failed, why it stopped."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while True:
        now = progress(instance, zones, dropped, downstream)
        if daemon.poll() is not None:
            return now, "the Dagster daemon exited"
        line = now.line()
        if line != last:
            print(f"  [{time.monotonic() - started:6.1f}s] {line}", flush=True)
            last = line
        if now.done or now.runs_failed:
            return now, None
        if time.monotonic() > deadline:
            return now, f"timed out after {timeout_s:.0f}s; still stale: {now.stale_downstream}"
        time.sleep(1)  # polling the instance, not standing in for a synchronisation


def table_rows(warehouse: LandingWarehouse) -> list[tuple[str, str, int]]:
    """(layer, table, rows) for every table and view of our layers, in DuckDB or Snowflake
    (names folded to the warehouse's case to look them up, reported lower case)."""
    with warehouse.connect(read_only=True) as con:
        dialect = warehouse.dialect
        placeholders = ", ".join("?" for _ in LAYERS)
        layers = [dialect.fold(layer) for layer in LAYERS]
        # views too: fakesnow lists dbt's staging views only in information_schema.views
        names = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            f"WHERE table_schema IN ({placeholders}) UNION "
            "SELECT table_schema, table_name FROM information_schema.views "
            f"WHERE table_schema IN ({placeholders}) ORDER BY 1, 2",
            layers + layers,
        ).fetchall()
        return [
            (
                schema.lower(),
                table.lower(),
                con.execute(f"SELECT count(*) FROM {qualified(schema, table)}").fetchone()[0],
            )
            for schema, table in names
        ]
