"""`landfall up` / `down` / `dev` on the real local stack (moto's S3, `dg dev`: webserver,
daemon, code servers, run workers): a stop leaves no process behind within 15 s, a run it
interrupted is not left STARTED, and `down` + `up` keeps the landed objects, the run history
and the warehouse. Slow: starts the whole stack twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import dagster as dg
import pytest

from common.settings import PROJECT_ROOT
from devstack.local_stack import free_port
from devstack.processes import StackRecord
from landing import ledger
from landing.samples import customers_csv, orders_csv
from landing.warehouse import DuckDBWarehouse

STOP_WITHIN_S = 15
BUCKET = "landfall-landing"
IN_FLIGHT = (
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)


def _stack_env(state: Path) -> dict[str, str]:
    """This test's own stack: everything derived from its state folder, nothing inherited from
    the test session's local environment."""
    inherited = ("LANDFALL_", "DAGSTER_HOME", "SLING_HOME_DIR")
    env = {k: v for k, v in os.environ.items() if not k.startswith(inherited)}
    env.update(
        LANDFALL_STATE_DIR=str(state),
        LANDFALL_S3_PORT=str(free_port()),
        LANDFALL_UI_PORT=str(free_port()),
        # a launch's gRPC call can exceed the 60 s default on a loaded two-core machine
        DAGSTER_GRPC_TIMEOUT_SECONDS="180",
    )
    return env


def _landfall(env: dict[str, str], *args: str, timeout: float = 400) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "devstack.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"landfall {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _status_json(env: dict[str, str]) -> dict:
    """`landfall status --zone customers --json`: the documented contract (docs/cli.md)."""
    return json.loads(_landfall(env, "status", "--zone", "customers", "--json"))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # gone meanwhile, or not ours to read
        return b""


def _processes_of(state: Path, record: StackRecord) -> dict[int, str]:
    """Processes that belong to the stack, found independently of devstack/processes.py: by
    the state folder in their environment, working directory or command line, by the stack id,
    or by a recorded process group that still has members."""
    found: dict[int, str] = {}
    markers = (
        f"LANDFALL_STATE_DIR={state}".encode(),
        f"LANDFALL_STACK_ID={record.stack_id}".encode(),
    )
    for proc in Path("/proc").glob("[0-9]*"):
        pid = int(proc.name)
        if pid == os.getpid():
            continue
        stat = _read(proc / "stat").decode()
        if not stat or stat[stat.rindex(")") + 2] == "Z":  # exited, waiting to be reaped
            continue
        cmdline = _read(proc / "cmdline").replace(b"\0", b" ").decode(errors="replace")
        try:
            cwd = os.readlink(proc / "cwd")
        except OSError:
            cwd = ""
        environ = _read(proc / "environ").split(b"\0")
        if (
            any(m in environ for m in markers)
            or cwd.startswith(str(state))
            or str(state) in cmdline
        ):
            found[pid] = cmdline
    for started in record.processes:
        try:
            os.killpg(started.pid, 0)
            found.setdefault(started.pid, f"process group {started.pid} ({started.name})")
        except ProcessLookupError:
            pass
    return found


def _wait_until_gone(state: Path, record: StackRecord, since: float) -> dict[int, str]:
    while (left := _processes_of(state, record)) and time.monotonic() < since + STOP_WITHIN_S:
        time.sleep(0.2)
    return left


@contextmanager
def _instance(state: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(state / "dagster_home")) as instance:
        yield instance


def _wait_for_run(
    state: Path, zone: str, status: dg.DagsterRunStatus, timeout_s: float = 300
) -> str:
    """The id of the first run of the zone's ingestion seen in `status`."""
    deadline = time.monotonic() + timeout_s
    with _instance(state) as instance:
        while time.monotonic() < deadline:
            runs = instance.get_run_records(
                dg.RunsFilter(statuses=[status], tags={"landfall/zone": zone})
            )
            if runs:
                return runs[0].dagster_run.run_id
            failed = instance.get_run_records(
                dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE], tags={"landfall/zone": zone})
            )
            assert not failed, f"{zone} run {failed[0].dagster_run.run_id} failed"
            time.sleep(0.5)
    raise AssertionError(f"no {zone} run {status.value} within {timeout_s}s")


def _runs(state: Path) -> dict[str, dg.DagsterRunStatus]:
    with _instance(state) as instance:
        return {r.dagster_run.run_id: r.dagster_run.status for r in instance.get_run_records()}


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_down_and_ctrl_c_stop_everything_and_state_survives(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = _stack_env(state)
    assert "started:" in _landfall(env, "up")
    assert "already running" in _landfall(env, "up")  # idempotent
    record = StackRecord.load(state / "stack.json")
    assert record is not None and {p.name for p in record.processes} == {"s3", "dagster"}
    # started through `dg dev`, not the superseded `dagster dev` (which warns on every start)
    assert "superseded" not in (state / "logs" / "dagster.log").read_text()

    s3 = boto3.client(
        "s3",
        endpoint_url=record.s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    # a small file landed and loaded through the CLI before the stop (drop -> wait -> status
    # --json): the warehouse and its ledger must survive down + up
    small = "customers/2026-12-03/customers_small.csv"
    mine = tmp_path / "customers_small.csv"
    mine.write_bytes(customers_csv(range(1, 21), 7))
    _landfall(env, "drop", str(mine), "--zone", "customers", "--key", "2026-12-03/" + mine.name)
    _landfall(env, "wait", "--timeout", "600", timeout=660)
    before = _status_json(env)
    assert set(before) >= {"objects", "counts", "total", "page"}, before
    [entry] = [o for o in before["objects"] if o["key"] == small]
    assert set(entry) >= {"key", "etag", "zone", "partition", "state", "rows", "reason"}
    assert (entry["zone"], entry["state"], entry["rows"], entry["reason"]) == (
        "customers",
        "loaded",
        20,
        None,
    )
    # a file large enough that its load is still in flight when the stack stops
    key = "orders/2026-12-03/big_orders.csv"
    s3.put_object(Bucket=BUCKET, Key=key, Body=orders_csv(range(1, 300_001), 500, 7))
    landed = s3.head_object(Bucket=BUCKET, Key=key)
    run_id = _wait_for_run(state, "orders", dg.DagsterRunStatus.STARTED)
    # the run worker (a child of the code server) is among the stack's processes
    assert len(_processes_of(state, record)) > 6

    stopping = time.monotonic()
    down = _landfall(env, "down")
    print(down)
    left = _wait_until_gone(state, record, stopping)
    assert not left, f"still running {STOP_WITHIN_S}s after `landfall down`: {left}"
    assert "stopped in" in down
    runs = _runs(state)
    assert runs[run_id] in (dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.FAILURE), down
    assert not [r for r, status in runs.items() if status in IN_FLIGHT]
    assert not (state / "stack.json").exists()
    assert "nothing to stop" in _landfall(env, "down")

    # down + up keeps the landed object (same version, same time), run history and warehouse
    assert "started:" in _landfall(env, "up")
    record = StackRecord.load(state / "stack.json")
    assert record is not None
    again = s3.head_object(Bucket="landfall-landing", Key=key)
    assert (again["ETag"], again["LastModified"]) == (landed["ETag"], landed["LastModified"])
    assert set(runs) <= set(_runs(state))
    after = _status_json(env)
    assert [o for o in after["objects"] if o["key"] == small] == [entry]  # the ledger survived

    # `landfall dev` on the running stack, stopped by Ctrl-C (SIGINT), stops all of it too
    log = (tmp_path / "dev.log").open("wb")
    dev = subprocess.Popen(
        [sys.executable, "-m", "devstack.cli", "dev", "--no-samples"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while b"Ctrl-C stops" not in (tmp_path / "dev.log").read_bytes():
            assert dev.poll() is None and time.monotonic() < deadline, "landfall dev did not attach"
            time.sleep(0.5)
        stopping = time.monotonic()
        dev.send_signal(signal.SIGINT)
        left = _wait_until_gone(state, record, stopping)
        assert not left, f"still running {STOP_WITHIN_S}s after Ctrl-C on `landfall dev`: {left}"
        assert dev.wait(timeout=30) == 0, (tmp_path / "dev.log").read_text()
    finally:
        if dev.poll() is None:
            dev.kill()
        log.close()
    assert not [r for r, status in _runs(state).items() if status in IN_FLIGHT]
    warehouse = DuckDBWarehouse(path=str(state / "warehouse.duckdb"))
    with warehouse.connect(read_only=True) as con:
        loaded = {(e.object_key, e.state) for e in ledger.entries(con, "customers")}
    assert (small, "loaded") in loaded
