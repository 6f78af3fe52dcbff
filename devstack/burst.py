"""Bursts: many files dropped at once into a running stack, watched until every one is loaded
or quarantined (and, for a cascade, everything downstream is up to date).

Shared by `landfall burst`, the burst and fault suite (tests/ops) and the benchmark
(bench/burst.py): deterministic burst files with some bad ones, the Dagster processes (daemon,
code servers), polling with a deadline, and latency figures read back from the instance.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from common.dagster_private import code_server_load_error
from common.settings import PROJECT_ROOT
from devstack import local_stack, progress
from devstack.stack import dagster_bin, stop
from landing.samples import sample_files
from landing.warehouse import LandingWarehouse
from landing.zones import ZoneSpec

LOCATIONS = ("ingestion", "transformation", "ml")
# One bad file per format, each a different reason: a value that is not its type, no rows at
# all, a line that is not JSON.
BAD_BODIES = {
    "orders": b"order_id,customer_id,order_ts,amount,status\n1,2,not-a-date,3.50,placed\n",
    "customers": b"",
    "events": b'{"event_id": 1, "customer_id": 2\n',
}


def burst_files(
    n: int, bad_every: int = 0, seed: int = 7, batch: str = "burst"
) -> tuple[dict[str, bytes], set[str]]:
    """`n` small files spread over the zones (orders, events, customers in turn), every
    `bad_every`-th one replaced by a bad file. Returns the files and the keys of the bad ones."""
    per_zone = -(-n // 3)
    files = sample_files(
        seed=seed,
        customers=per_zone * 2,
        orders=per_zone * 4,
        events=per_zone * 3,
        files_per_zone=per_zone,
        batch=batch,
    )
    by_zone = {z: sorted(k for k in files if k.startswith(f"{z}/")) for z in BAD_BODIES}
    order = [
        key
        for i in range(per_zone)
        for zone in ("orders", "events", "customers")
        if i < len(by_zone[zone])
        for key in [by_zone[zone][i]]
    ][:n]
    bad = {key for i, key in enumerate(order, start=1) if bad_every and i % bad_every == 0}
    return {
        key: BAD_BODIES[key.split("/", 1)[0]] if key in bad else files[key] for key in order
    }, bad


def drop(s3: Any, bucket: str, files: dict[str, bytes], workers: int = 8) -> dict[str, float]:
    """Put every file (in parallel, like a real burst); returns key -> epoch seconds of its put."""

    def put(item: tuple[str, bytes]) -> tuple[str, float]:
        s3.put_object(Bucket=bucket, Key=item[0], Body=item[1])
        return item[0], time.time()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(put, files.items()))


def spawn(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """A Dagster CLI process in its own process group that stops on SIGTERM."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        ["env", "--default-signal=INT,TERM", *command],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=open(log_path, "ab"),  # noqa: SIM115 - lives as long as the process
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_until(
    condition: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.5
) -> Any:
    """Poll `condition` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)


@dataclass
class CodeServers:
    """One `dagster code-server` per location and the workspace file that points at them."""

    workspace: Path
    procs: dict[str, subprocess.Popen]
    ports: dict[str, int]

    def stop(self) -> None:
        for proc in self.procs.values():
            stop(proc)


def code_server_serving(port: int, host: str = "127.0.0.1") -> bool:
    """The code server answers gRPC's standard health check as serving: the check the public
    `dagster api grpc-health-check` makes, without a Python start per poll."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"{host}:{port}") as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="DagsterApi"), timeout=5
            )
        except grpc.RpcError:  # not listening yet
            return False
    return response.status == health_pb2.HealthCheckResponse.SERVING


def code_server_command(module: str, port: int, location: str) -> list[str]:
    """`dagster code-server start` for `module` on 127.0.0.1:`port`."""
    return [
        dagster_bin("dagster"),
        "code-server",
        "start",
        "-m",
        module,
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "--location-name",
        location,
    ]


def start_code_servers(
    locations: Sequence[str], env: dict[str, str], folder: Path, timeout_s: float = 240
) -> CodeServers:
    folder.mkdir(parents=True, exist_ok=True)
    ports = {name: local_stack.free_port() for name in locations}
    procs = {
        name: spawn(
            code_server_command(f"orchestration.{name}", port, name),
            env,
            folder / f"code-server-{name}.log",
        )
        for name, port in ports.items()
    }
    servers = CodeServers(folder / "workspace.yaml", procs, ports)
    servers.workspace.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {"grpc_server": {"host": "127.0.0.1", "port": port, "location_name": name}}
                    for name, port in ports.items()
                ]
            }
        )
    )

    def all_up() -> bool:
        for name, port in ports.items():
            if procs[name].poll() is not None:
                raise RuntimeError(f"code server {name} exited; see {folder}")
            if not code_server_serving(port):
                return False
        for name, port in ports.items():
            # a location whose definitions raised still serves: fail now, not at the timeout
            if error := code_server_load_error(port):
                raise RuntimeError(
                    f"code location {name} failed to load: {error} "
                    f"(log: {folder / f'code-server-{name}.log'})"
                )
        return True

    try:
        wait_until(all_up, timeout_s, f"code servers {list(locations)}")
    except BaseException:
        servers.stop()
        raise
    return servers


def start_daemon(workspace: Path, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    return spawn([dagster_bin("dagster-daemon"), "run", "-w", str(workspace)], env, log_path)


def instance_yaml(base: Path, overrides: dict[str, Any]) -> str:
    """`base` (an infra/dagster*.yaml) with top-level sections deep-merged from `overrides`."""

    def merge(a: dict, b: dict) -> dict:
        out = dict(a)
        for key, value in b.items():
            out[key] = (
                merge(a[key], value)
                if isinstance(a.get(key), dict) and isinstance(value, dict)
                else value
            )
        return out

    return yaml.safe_dump(merge(yaml.safe_load(base.read_text()), overrides), sort_keys=False)


def in_flight_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return list(instance.get_runs(dg.RunsFilter(statuses=progress.IN_FLIGHT)))


def watch(
    instance: dg.DagsterInstance,
    zones: list[ZoneSpec],
    keys: list[str],
    downstream: list[dg.AssetKey],
    timeout_s: float,
    report: Callable[[str], None] = print,
    alive: Callable[[], None] = lambda: None,
    warehouse: LandingWarehouse | None = None,
) -> progress.Progress:
    """Print progress whenever it changes until every file is loaded or quarantined, no run is
    in flight and `downstream` is up to date. `alive` raises if a process we need died; with
    `warehouse`, files retention took out of the instance are found in the ledger."""
    started, last = time.monotonic(), ""

    def settled() -> progress.Progress | None:
        nonlocal last
        alive()
        now = progress.progress(instance, zones, keys, downstream, warehouse)
        line = now.line()
        if line != last:
            report(f"  [{time.monotonic() - started:6.1f}s] {line}")
            last = line
        return now if now.done else None

    return wait_until(settled, timeout_s, "every file loaded or quarantined", interval_s=1.0)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


@dataclass
class BurstFigures:
    files: int
    wall_s: float
    runs: int
    runs_by_job: dict[str, int]
    partitions: int
    raw_latency_s: list[float] = field(default_factory=list)
    cascade_latency_s: list[float] = field(default_factory=list)
    # drop -> the object's ledger row (its rows are in raw); the raw latency above is drop ->
    # Dagster recorded its partition materialized, which the run writes after every ledger row
    ledger_latency_s: list[float] = field(default_factory=list)
    # one line per run, seconds after the first drop: what waited on what when a figure is bad
    timeline: list[str] = field(default_factory=list)

    def p(self, which: str, q: float) -> float:
        return _percentile(getattr(self, f"{which}_latency_s"), q)

    def line(self) -> str:
        text = (
            f"{self.files} files in {self.wall_s:.1f}s, {self.runs} runs "
            f"({', '.join(f'{j} {n}' for j, n in sorted(self.runs_by_job.items()))}), "
            f"{self.partitions} partitions; raw latency p50 {self.p('raw', 50):.1f}s "
            f"p95 {self.p('raw', 95):.1f}s"
        )
        if self.ledger_latency_s:
            text += (
                f"; ledger row p50 {self.p('ledger', 50):.1f}s p95 {self.p('ledger', 95):.1f}s "
                f"last {max(self.ledger_latency_s):.1f}s"
            )
        if self.cascade_latency_s:
            text += f"; to scores p50 {self.p('cascade', 50):.1f}s p95 {self.p('cascade', 95):.1f}s"
        return text


def _materialization_times(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey
) -> list[tuple[float, float]]:
    """(creation time of the run, event time) of every materialization of an asset."""
    records, cursor = [], None
    while True:  # the event log hands out at most 10,000 records per call
        page = instance.fetch_materializations(asset_key, limit=10_000, cursor=cursor)
        records += page.records
        if not page.has_more:
            break
        cursor = page.cursor
    created: dict[str, float] = {}
    out = []
    for record in records:
        run_id = record.run_id
        if run_id not in created:
            run = instance.get_run_record_by_id(run_id)
            created[run_id] = run.create_timestamp.timestamp() if run else 0.0
        out.append((created[run_id], record.timestamp))
    return sorted(out)


def figures(
    instance: dg.DagsterInstance,
    zones: list[ZoneSpec],
    dropped_at: dict[str, float],
    wall_s: float,
    cascade: Sequence[dg.AssetKey] = (),
    since: float = 0.0,
    excluded: Sequence[str] = (),
) -> BurstFigures:
    """Runs, partitions and per-file latency: drop -> its raw partition materialized, and
    (for a cascade) drop -> each asset of `cascade` in turn materialized by a run created after
    the previous one had the file's data. Runs created before `since` (epoch) and the partitions
    of `excluded` keys are a warm-up's."""
    runs = [r for r in instance.get_run_records() if r.create_timestamp.timestamp() >= since]
    by_job: dict[str, int] = {}
    for record in runs:
        by_job[record.dagster_run.job_name] = by_job.get(record.dagster_run.job_name, 0) + 1
    raw_done: dict[str, float] = {}
    for zone in zones:
        keys = [k for k in dropped_at if zone.matches(k)]
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(
                    asset_key=dg.AssetKey(zone.asset_key_path), asset_partitions=chunk
                ),
                limit=len(chunk) * 4,
            ).records
            for record in records:
                partition = record.partition_key
                if partition is not None:
                    raw_done[partition] = min(raw_done.get(partition, 1e18), record.timestamp)
    steps = [_materialization_times(instance, key) for key in cascade]
    raw_latency, cascade_latency = [], []
    for key, dropped in dropped_at.items():
        if key not in raw_done:
            continue
        raw_latency.append(raw_done[key] - dropped)
        at: float | None = raw_done[key]
        for times in steps:
            at = next((done for created, done in times if at is not None and created >= at), None)
        if steps and at is not None:
            cascade_latency.append(at - dropped)
    t0 = min(dropped_at.values(), default=0.0)

    def at(timestamp: float | None) -> str:
        return "-" if timestamp is None else f"{timestamp - t0:6.1f}"

    def targets(run: dg.DagsterRun) -> str:
        keys = sorted(k.to_user_string() for k in run.asset_selection or ())
        checks = sorted(c.name for c in run.asset_check_selection or ())
        shown = keys[:3] + (["…"] if len(keys) > 3 else []) + [f"check {c}" for c in checks[:2]]
        return f"{len(keys)} assets: {', '.join(shown)}" if shown else "-"

    timeline = [
        f"{r.dagster_run.job_name:<24} created {at(r.create_timestamp.timestamp())} started "
        f"{at(r.start_time)} ended {at(r.end_time)} {r.dagster_run.status.value:<8} "
        f"files {r.dagster_run.tags.get('landfall/files', '-'):>4} {targets(r.dagster_run)}"
        for r in sorted(runs, key=lambda r: r.create_timestamp)
    ]
    warm_up = set(excluded)
    partitions = sum(
        len(set(instance.get_dynamic_partitions(z.partitions_name)) - warm_up) for z in zones
    )
    return BurstFigures(
        files=len(dropped_at),
        wall_s=wall_s,
        runs=len(runs),
        runs_by_job=by_job,
        partitions=partitions,
        raw_latency_s=raw_latency,
        cascade_latency_s=cascade_latency,
        timeline=timeline,
    )


def ledger_latency(
    warehouse_path: Path, zones: list[ZoneSpec], dropped_at: dict[str, float]
) -> list[float]:
    """Seconds from each object's drop to its ledger row (stamped in the transaction that
    merged its rows into raw), for the objects the ledger records. Read with no run writing."""
    from datetime import UTC

    from landing import ledger
    from landing.warehouse import DuckDBWarehouse

    out = []
    with DuckDBWarehouse(path=str(warehouse_path)).connect(read_only=True) as con:
        for zone in zones:
            keys = [k for k in dropped_at if zone.matches(k)]
            for (key, _), entry in ledger.current_entries(con, zone.name, keys).items():
                recorded = entry.updated_at.replace(tzinfo=UTC).timestamp()
                out.append(recorded - dropped_at[key])
    return out


def child_environment(**extra: str) -> dict[str, str]:
    """This process's environment (already holding the local stack's variables) plus `extra`.

    A burst keeps every core busy; launching a run through a busy code server was seen to
    exceed Dagster's 60 s gRPC default (the run then fails and is retried), so allow longer.
    """
    return {"DAGSTER_GRPC_TIMEOUT_SECONDS": "180", **os.environ, **extra}


@dataclass
class LocalBurst:
    """A burst on the embedded default: the local instance file (SQLite, queued runs, pools),
    `dagster-daemon` over infra/workspace.yaml, moto's S3 already running."""

    folder: Path
    s3: Any
    bucket: str
    runs_mode: str = "per_tick"
    cascade: bool = True
    report: Callable[[str], None] = print

    def run(
        self,
        files: dict[str, bytes],
        timeout_s: float,
        one_at_a_time: int = 0,
        warm_up: dict[str, bytes] | None = None,
    ) -> BurstFigures:
        """Drop `files` at once (or, with `one_at_a_time`, that many files per step, waiting for
        the whole cascade after each step: the naive comparison) and wait until done.

        `warm_up` files are dropped and cascaded first, untimed and not counted: one file on
        its own cannot reach the scores until every zone has data (the marts join them)."""
        from landing.zones import load_zones

        home = self.folder / "dagster_home"
        local_stack.write_local_instance(home)
        env = child_environment(
            DAGSTER_HOME=str(home),
            LANDFALL_BUCKET=self.bucket,
            LANDFALL_WAREHOUSE_PATH=str(self.folder / "warehouse.duckdb"),
            LANDFALL_LANDING_RUNS=self.runs_mode,
        )
        zones = load_zones()
        downstream = [dg.AssetKey(["ml", "customer_scores"])] if self.cascade else []
        cascade = (
            [dg.AssetKey(["marts", "customer_order_features"]), *downstream] if self.cascade else []
        )
        locations = LOCATIONS if self.cascade else ("ingestion",)
        # Create the SQLite storages before any other process opens them: processes that
        # initialise them at once can stamp two alembic heads into the schedule database.
        dg.DagsterInstance.from_config(str(home)).dispose()
        servers = start_code_servers(locations, env, self.folder)
        daemon = start_daemon(servers.workspace, env, self.folder / "daemon.log")

        def alive() -> None:
            if daemon.poll() is not None:
                raise RuntimeError(f"the daemon exited; see {self.folder / 'daemon.log'}")

        try:
            with dg.DagsterInstance.from_config(str(home)) as instance:
                wait_until(lambda: landing_sensors_ticking(instance, zones), 300, "sensors")
                if warm_up:
                    self.report(f"  warm-up: {len(warm_up)} files, cascaded before timing")
                    warmed = list(drop(self.s3, self.bucket, warm_up))
                    watch(instance, zones, warmed, downstream, timeout_s, self.report, alive)
                started, started_at = time.monotonic(), time.time()
                dropped_at: dict[str, float] = {}
                step = one_at_a_time or len(files)
                keys = list(files)
                for first in range(0, len(keys), step):
                    chunk = {k: files[k] for k in keys[first : first + step]}
                    dropped_at |= drop(self.s3, self.bucket, chunk)
                    watch(
                        instance, zones, list(dropped_at), downstream, timeout_s, self.report, alive
                    )
                wall_s = time.monotonic() - started
                result = figures(
                    instance, zones, dropped_at, wall_s, cascade, started_at, list(warm_up or {})
                )
                result.ledger_latency_s = ledger_latency(
                    self.folder / "warehouse.duckdb", zones, dropped_at
                )
                return result
        finally:
            stop(daemon)
            servers.stop()


def landing_sensors_ticking(instance: dg.DagsterInstance, zones: list[ZoneSpec]) -> bool:
    """The daemon has picked up every zone's sensor (it stores their state on the first tick)."""
    names = {s.instigator_name for s in instance.all_instigator_state()}
    return all(f"landing_{z.name}_sensor" in names for z in zones)
