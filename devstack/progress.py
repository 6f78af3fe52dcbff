"""What the instance and the warehouse say about a drop: progress while waiting, the summary
after. Read-only: opens the warehouse only when no run is writing it."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from landing import ledger
from landing.identifiers import qualified
from landing.warehouse import DuckDBWarehouse, LandingWarehouse
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


def _ledger_states(
    warehouse: LandingWarehouse, zones: list[ZoneSpec], keys: list[str]
) -> dict[str, str]:
    """Key -> the state of its current version's ledger entry (loaded or quarantined)."""
    states: dict[str, str] = {}
    if isinstance(warehouse, DuckDBWarehouse) and not Path(warehouse.path).exists():
        return states  # nothing loaded yet
    with warehouse.connect(read_only=True) as con:
        for zone in zones:
            mine = [k for k in keys if zone.matches(k)]
            for (key, _), entry in ledger.current_entries(con, zone.name, mine).items():
                states[key] = entry.state
    return states


def progress(
    instance: dg.DagsterInstance,
    zones: list[ZoneSpec],
    dropped: list[str],
    downstream: list[dg.AssetKey],
    warehouse: LandingWarehouse | None = None,
) -> Progress:
    """Where a drop stands, from the instance. With `warehouse`, a file the instance no longer
    knows is looked up in the ledger once no run is in flight (so no run is writing the
    warehouse): retention may have removed its partition and deleted its run, materialization
    and all (sensors/retention.py), and the ledger is the permanent record."""
    states: dict[str, str] = {}
    for zone in zones:
        keys = [k for k in dropped if zone.matches(k)]
        if keys:
            states.update(_latest_states(instance, zone, keys))
    running = instance.get_runs(dg.RunsFilter(statuses=IN_FLIGHT))
    in_flight = len(running)
    unknown = [k for k in dropped if k not in states]
    if warehouse is not None and unknown and not in_flight:
        states.update(_ledger_states(warehouse, zones, unknown))
    loaded = sum(1 for s in states.values() if s == "loaded")
    quarantined = sum(1 for s in states.values() if s == "quarantined")
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


_ENDED = [
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
]


def _first_line(text: str, limit: int = 300) -> str:
    line = next((x.strip() for x in text.splitlines() if x.strip()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _root_cause(error) -> str:
    """The user's exception, not Dagster's wrapper around it ("Error occurred while ...")."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return error.message


class RunFeed:
    """What `landfall dev` prints as runs end: what each landing run loaded or quarantined (and
    why), what the other runs built, every failed check, and every failed run with its error
    and its page in the UI. The daemon's own output stays in the stack's log file."""

    def __init__(self, ui_url: str) -> None:
        self._ui_url = ui_url.rstrip("/")
        self._seen: set[str] = set()

    def skip_existing(self, instance: dg.DagsterInstance) -> None:
        """Runs that ended before the feed started are history, not news."""
        self._seen.update(r.dagster_run.run_id for r in self._ended(instance))

    def poll(self, instance: dg.DagsterInstance) -> list[str]:
        lines: list[str] = []
        for record in reversed(self._ended(instance)):  # oldest first
            run = record.dagster_run
            if run.run_id not in self._seen:
                self._seen.add(run.run_id)
                lines.extend(self._describe(instance, run))
        return lines

    def _ended(self, instance: dg.DagsterInstance) -> list:
        return list(instance.get_run_records(dg.RunsFilter(statuses=_ENDED), limit=200))

    def _events(self, instance: dg.DagsterInstance, run_id: str, kind: dg.DagsterEventType):
        return [
            r.event_log_entry
            for r in instance.get_records_for_run(run_id, of_type=kind, limit=1000).records
        ]

    def _describe(self, instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[str]:
        # automation's runs have an internal job name (__ASSET_JOB): the run id says enough
        name = "" if run.job_name.startswith("__") else f"{run.job_name} "
        link = f"{self._ui_url}/runs/{run.run_id}"
        if run.status == dg.DagsterRunStatus.CANCELED:
            return [f"canceled {name}run {run.run_id[:8]} -- {link}"]
        if run.status == dg.DagsterRunStatus.FAILURE:
            errors = [
                _root_cause(e.dagster_event.step_failure_data.error)
                for e in self._events(instance, run.run_id, dg.DagsterEventType.STEP_FAILURE)
                if e.dagster_event and e.dagster_event.step_failure_data.error
            ] or [
                e.message or ""
                for e in self._events(instance, run.run_id, dg.DagsterEventType.RUN_FAILURE)
            ]
            reason = _first_line(errors[0]) if errors else "see its log"
            return [f"FAILED {name}run {run.run_id[:8]}: {reason} -- {link}"]
        lines = []
        built = sorted(
            {
                e.dagster_event.asset_key.to_user_string()
                for e in self._events(
                    instance, run.run_id, dg.DagsterEventType.ASSET_MATERIALIZATION
                )
                if e.dagster_event and e.dagster_event.asset_key
            }
        )
        checks = [
            e.dagster_event.event_specific_data
            for e in self._events(instance, run.run_id, dg.DagsterEventType.ASSET_CHECK_EVALUATION)
            if e.dagster_event
        ]
        files = [c for c in checks if c.asset_check_key.name == "file_accepted"]
        if files:  # a landing run: its files' verdict says what came in and what was refused
            for check in files:
                table = check.asset_check_key.asset_key.to_user_string()
                lines.append(f"{table}: {check.description}")
        elif built:
            lines.append(f"built {', '.join(built)}")
        for check in checks:
            if not check.passed and check.asset_check_key.name != "file_accepted":
                severity = getattr(check.severity, "value", check.severity)
                lines.append(
                    f"check {check.asset_check_key.to_user_string()} {severity}: "
                    f"{_first_line(check.description or '')} -- {link}"
                )
        return lines
