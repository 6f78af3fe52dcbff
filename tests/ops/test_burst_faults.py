"""Bursts and faults on the production instance configuration: Postgres storage (a fresh schema
per test), the real `dagster-daemon` and a code server as subprocesses, runs launched by the
default run launcher. A burst of files (some bad) is dropped at once; the slow version also kills
a run's process mid-step, kills and restarts the daemon mid-burst and holds the warehouse's
write lock from another process for a while. Retention works throughout, as in production but
down to a few partitions per zone: handled partitions are removed and their runs deleted while
the burst loads. Afterwards every file is loaded or quarantined exactly once (the ledger and the
raw rows), no partition is duplicated, each zone is pruned to its keep, no run is stuck and no
pool slot is left claimed."""

from __future__ import annotations

import getpass
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from common.settings import PROJECT_ROOT
from devstack import burst
from devstack.stack import stop
from landing import ledger
from landing.warehouse import DuckDBWarehouse
from landing.zones import load_zones
from orchestration.pools import WAREHOUSE_POOL

LOCK_HELD_S = 20
RETENTION_KEEP = 5  # partitions each zone keeps: far fewer than a burst registers
PROD_YAML = PROJECT_ROOT / "infra" / "dagster.prod.yaml"
ZONES = load_zones()
# The production file with what differs on one small machine: DuckDB takes one writer (pool of
# 1), fewer concurrent runs, and faster monitoring so a crashed run's slot is freed in seconds.
LOCAL_OVERRIDES = {
    "concurrency": {"runs": {"max_concurrent_runs": 4}, "pools": {"default_limit": 1}},
    "run_coordinator": {"config": {"dequeue_interval_seconds": 1}},
    "run_monitoring": {"poll_interval_seconds": 5, "free_slots_after_run_end_seconds": 5},
    "sensors": {"use_threads": True, "num_workers": 4},
}


@pytest.fixture
def postgres_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The DAGSTER_PG_* variables infra/dagster.prod.yaml reads, pointing at a fresh schema."""
    psycopg2 = pytest.importorskip("psycopg2")
    user = os.environ.get("PGUSER") or getpass.getuser()
    try:
        admin = psycopg2.connect(
            host="127.0.0.1", port=5432, dbname="test", user=user, connect_timeout=2
        )
    except psycopg2.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432 (database test, user {user}): {exc}")
    admin.autocommit = True
    schema = f"landfall_burst_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE SCHEMA "{schema}"')
    env = {
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": "5432",
        "DAGSTER_PG_DB": "test",
        "DAGSTER_PG_USER": user,
        "DAGSTER_PG_PASSWORD": "",  # trust auth
        "PGOPTIONS": f"-csearch_path={schema}",  # libpq: every process uses the fresh schema
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        yield env
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()


@dataclass
class Burst:
    instance: dg.DagsterInstance
    warehouse: DuckDBWarehouse
    env: dict[str, str]
    folder: Path
    daemon: subprocess.Popen
    servers: burst.CodeServers

    def alive(self) -> None:
        if self.daemon.poll() is not None:
            raise RuntimeError(f"the daemon exited; see {self.folder / 'daemon.log'}")
        for name, proc in self.servers.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"code server {name} exited; see {self.folder}")

    def restart_daemon(self) -> None:
        """A crash, not a shutdown: SIGKILL, then a new daemon on the same instance."""
        os.killpg(self.daemon.pid, signal.SIGKILL)
        self.daemon.wait(timeout=30)
        self.daemon = burst.start_daemon(
            self.servers.workspace, self.env, self.folder / "daemon.log"
        )


@pytest.fixture
def prod_stack(bucket, tmp_path, postgres_env) -> Iterator[Burst]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(burst.instance_yaml(PROD_YAML, LOCAL_OVERRIDES))
    warehouse = DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
    env = burst.child_environment(
        DAGSTER_HOME=str(home),
        LANDFALL_BUCKET=bucket.landing.bucket,
        LANDFALL_WAREHOUSE_PATH=warehouse.path,
        LANDFALL_LANDING_RUNS="per_tick",
        LANDFALL_RETENTION_KEEP=str(RETENTION_KEEP),
        LANDFALL_RETENTION_INTERVAL_SECONDS="30",
    )
    servers = burst.start_code_servers(["ingestion"], env, tmp_path / "logs")
    daemon = burst.start_daemon(servers.workspace, env, tmp_path / "logs" / "daemon.log")
    stack: Burst | None = None
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            burst.wait_until(
                lambda: burst.landing_sensors_ticking(instance, ZONES), 300, "the landing sensors"
            )
            stack = Burst(instance, warehouse, env, tmp_path / "logs", daemon, servers)
            yield stack
    finally:
        # the daemon running now: a test that restarted it holds the new one in the stack
        stop(stack.daemon if stack else daemon)
        servers.stop()


def _run_worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        pid = event.engine_event_data.metadata.get("pid") if event else None
        if pid is not None:
            return int(pid.value)
    return None


def _busy_ingestion_run(b: Burst) -> tuple[str, int] | None:
    """A started ingestion run of several files, in its step, with at least one file done."""
    for run in b.instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        if not run.job_name.startswith("ingest_") or int(run.tags.get("landfall/files", 0)) < 5:
            continue
        pid = _run_worker_pid(b.instance, run.run_id)
        done = [
            e
            for e in b.instance.all_logs(run.run_id)
            for line in (e.user_message or "").splitlines()
            if line.startswith(("loaded s3://", "quarantined s3://"))
        ]
        if pid and done:
            return run.run_id, pid
    return None


class WarehouseLock:
    """Another process holding DuckDB's write lock, as a long query or a backup would."""

    def __init__(self, path: str, folder: Path) -> None:
        self.marker = folder / "lock-held"
        script = (
            "import sys\n"
            "from landing.warehouse import DuckDBWarehouse\n"
            f"with DuckDBWarehouse(path={path!r}).connect() as con:\n"
            f"    open({str(self.marker)!r}, 'w').close()\n"
            "    sys.stdin.read()\n"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script], stdin=subprocess.PIPE, cwd=PROJECT_ROOT
        )
        burst.wait_until(self.marker.exists, 180, "the warehouse lock")

    def release(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _assert_exactly_once(b: Burst, files: dict[str, bytes], bad: set[str]) -> None:
    # every file loaded or quarantined exactly once, in the ledger and in the raw rows
    with b.warehouse.connect(read_only=True) as con:
        entries = ledger.entries(con)
        raw_rows = {
            table: dict(
                con.execute(
                    f"SELECT _landfall_file, count(*) FROM raw.{table} GROUP BY 1"
                ).fetchall()
            )
            for table in ("orders", "customers", "events")
        }
    assert len(entries) == len(files), "one ledger row per dropped file, no more"
    states = {e.object_key: e.state for e in entries}
    assert states == {k: ("quarantined" if k in bad else "loaded") for k in files}
    for e in entries:
        table = e.object_key.split("/", 1)[0]
        expected_rows = (
            0
            if e.object_key in bad
            else len(files[e.object_key].splitlines()) - (0 if table == "events" else 1)
        )
        assert e.rows == expected_rows, e.object_key
        assert raw_rows[table].get(e.object_key, 0) == expected_rows, e.object_key

    # retention prunes each zone to its keep (every file is handled now): no partition twice,
    # none but the dropped files'
    def pruned() -> bool:
        return all(
            len(b.instance.get_dynamic_partitions(z.partitions_name)) <= RETENTION_KEEP
            for z in ZONES
        )

    burst.wait_until(pruned, 180, f"retention to prune each zone to {RETENTION_KEEP} partitions")
    for zone in ZONES:
        partitions = b.instance.get_dynamic_partitions(zone.partitions_name)
        dropped = {k for k in files if zone.matches(k)}
        assert len(partitions) == len(set(partitions)) == min(RETENTION_KEEP, len(dropped))
        assert set(partitions) <= dropped
    # no stuck runs: whatever is still in flight (the schema-change checks automation requests
    # after the last load) finishes
    burst.wait_until(
        lambda: not burst.in_flight_runs(b.instance), 300, "every run in flight to finish"
    )


def _assert_no_slot_leaked(b: Burst) -> None:
    """dagster #33643: a crashed run's slot is freed (free_slots_after_run_end_seconds)."""

    def free() -> bool:
        info = b.instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL)
        return not info.claimed_slots and not info.pending_steps

    burst.wait_until(free, 120, f"the {WAREHOUSE_POOL} pool's slots to be free")


@pytest.mark.postgres
@pytest.mark.timeout(1500)
def test_burst_of_50_on_postgres_loads_every_file_once(prod_stack: Burst, bucket):
    files, bad = burst.burst_files(50, bad_every=10, batch="b")
    started = time.monotonic()
    dropped_at = burst.drop(bucket.s3, bucket.landing.bucket, files)
    # ~4 min on a quiet machine; the bound allows a machine running other stacks (at load
    # average 25 it took over 10 min)
    burst.watch(
        prod_stack.instance,
        ZONES,
        list(files),
        [],
        1200,
        alive=prod_stack.alive,
        warehouse=prod_stack.warehouse,
    )
    stats = burst.figures(prod_stack.instance, ZONES, dropped_at, time.monotonic() - started)
    print(f"\nburst 50 on Postgres: {stats.line()}")
    _assert_exactly_once(prod_stack, files, bad)
    _assert_no_slot_leaked(prod_stack)
    # batching: one run per zone per tick, not one per file
    assert stats.runs_by_job and sum(stats.runs_by_job.values()) < len(files) // 3


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(6 * 3600)
def test_burst_of_500_survives_a_killed_run_a_daemon_crash_and_a_held_warehouse(
    prod_stack: Burst, bucket
):
    b = prod_stack
    size = int(os.environ.get("BURST_FILES", 500))  # smaller for a quick look
    files, bad = burst.burst_files(size, bad_every=25, batch="b")
    started = time.monotonic()
    dropped_at = burst.drop(bucket.s3, bucket.landing.bucket, files)

    # 1. kill a run's process in the middle of its step
    run_id, pid = burst.wait_until(
        lambda: _busy_ingestion_run(b), 600, "an ingestion run in the middle of its step"
    )
    os.kill(pid, signal.SIGKILL)
    burst.wait_until(
        lambda: b.instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE,
        120,
        f"the killed run {run_id} to be marked failed",
    )
    # its retry, seen now: once its partitions are handled, retention may delete both runs
    retries = burst.wait_until(
        lambda: b.instance.get_runs(dg.RunsFilter(tags={"dagster/parent_run_id": run_id})),
        300,
        f"a retry of the killed run {run_id}",
    )
    # 2. the daemon crashes and comes back while the burst is being worked on
    b.restart_daemon()
    # 3. the warehouse is unavailable for a while: another process holds its write lock
    lock = WarehouseLock(b.warehouse.path, b.folder)
    try:
        # the fault lasts a while by definition (not a synchronisation): shorter than the
        # warehouse resource's lock wait, longer than a file's load
        held_until = time.monotonic() + LOCK_HELD_S
        burst.wait_until(
            lambda: burst.in_flight_runs(b.instance) and time.monotonic() > held_until,
            600,
            "a run in flight while the lock is held",
        )
    finally:
        lock.release()

    # a file costs a few seconds here (one Sling process each); allow 30 s per file
    burst.watch(b.instance, ZONES, list(files), [], 30 * size, alive=b.alive, warehouse=b.warehouse)
    stats = burst.figures(b.instance, ZONES, dropped_at, time.monotonic() - started)
    print(f"\nburst {size} with faults on Postgres: {stats.line()}")
    assert retries, "the crashed run was retried"
    _assert_exactly_once(b, files, bad)
    _assert_no_slot_leaked(b)
