"""Start and stop the embedded default stack: moto's S3 server, the landing bucket, a Dagster
home, and the Dagster processes.

`landfall up`, `landfall dev` and `landfall down` share one stack per state folder
(`LANDFALL_STATE_DIR`, default .local/), recorded in `<state>/stack.json`; its logs are in
`<state>/logs/`. Everything it keeps lives in that folder: the warehouse (with the ledger), the
Dagster home (run history, partitions, sensor cursors) and the S3 server's recording (the landed
objects), so `down` + `up` picks up where it stopped. `landfall demo` and `landfall burst` start
their own throw-away stacks in sub-folders.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from common.settings import PROJECT_ROOT, Settings, get_settings
from devstack import local_stack
from devstack.processes import (
    STACK_ID_VARIABLE,
    StackRecord,
    all_processes,
    record_started,
    stop_stack_processes,
)
from landing.samples import sample_files

WORKSPACE = PROJECT_ROOT / "infra" / "workspace.yaml"


@dataclass
class RunningStack:
    settings: Settings
    env: dict[str, str]
    s3: object

    @property
    def dagster_home(self) -> Path:
        return Path(self.env["DAGSTER_HOME"])

    def drop_samples(self, **sizes: int | str) -> dict[str, bytes]:
        files = sample_files(**sizes)
        for key, body in files.items():
            self.s3.put_object(Bucket=self.settings.bucket, Key=key, Body=body)
        return files


def prepare(settings: Settings) -> dict[str, str]:
    """Everything a fresh clone needs before anything runs: env, extensions, dbt manifest."""
    env = local_stack.apply_local_environment(settings)
    local_stack.ensure_duckdb_extensions()
    from orchestration.dbt_project import prepare_manifest

    prepare_manifest()  # parses only when the project's files differ from the manifest's
    local_stack.write_local_instance(Path(env["DAGSTER_HOME"]))
    return env


@contextmanager
def local_stack_running(settings: Settings | None = None) -> Iterator[RunningStack]:
    """moto's S3 on the configured port with the landing bucket; stopped on exit."""
    settings = settings or get_settings()
    env = prepare(settings)
    port = int(settings.s3_endpoint.rsplit(":", 1)[1])
    server = local_stack.start_s3_server(port, settings.state_dir / "moto.log")
    try:
        s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint, region_name="us-east-1")
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        if settings.bucket not in existing:
            s3.create_bucket(Bucket=settings.bucket)
        yield RunningStack(settings, env, s3)
    finally:
        stop(server)


def start_dagster(command: list[str], log_path: Path | None = None) -> subprocess.Popen:
    """Start a Dagster CLI process that stops on SIGTERM (started from a script, `dg dev`
    otherwise ignores SIGINT/SIGTERM), in its own process group so its children stop too."""
    log = open(log_path, "ab") if log_path else None  # noqa: SIM115
    return subprocess.Popen(
        ["env", "--default-signal=INT,TERM", *command],
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
        start_new_session=True,
    )


def _group_running(pgid: int, leader: subprocess.Popen) -> bool:
    leader.poll()  # reap the leader once it exits, so it does not linger as a zombie
    if not Path("/proc").is_dir():
        return leader.returncode is None
    return any(p.pgid == pgid and p.running for p in all_processes().values())


def stop(proc: subprocess.Popen, timeout_s: float = 30) -> None:
    """Stop a process started in its own session and everything in its process group: SIGTERM,
    then SIGKILL to what is left after `timeout_s`. Returns once the group is empty.
    (A group id is not reused while any member lives, so signalling it is safe while one does.)"""
    for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 10.0)):
        if not _group_running(proc.pid, proc):
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and _group_running(proc.pid, proc):
            time.sleep(0.2)


# --- the shared local stack: landfall up / dev / down ------------------------------------------

STOP_DEADLINE_S = 15.0
INTERRUPTED = (
    "Interrupted: the local stack was stopped (`landfall down` or Ctrl-C on `landfall dev`) "
    "while this run was in flight."
)


def record_path(state_dir: Path) -> Path:
    return state_dir / "stack.json"


def logs_dir(state_dir: Path) -> Path:
    return state_dir / "logs"


def s3_recording(state_dir: Path) -> Path:
    return state_dir / "s3" / "recording.jsonl"


def running_stack(state_dir: Path) -> StackRecord | None:
    """The stack recorded under `state_dir` if every process it started is alive."""
    record = StackRecord.load(record_path(state_dir))
    if record is None or not record.processes or not all(p.alive() for p in record.processes):
        return None
    return record


def start_stack(settings: Settings, ui_port: int) -> tuple[StackRecord, bool]:
    """Start the stack in the background (S3 server, then `dg dev`: webserver, daemon, code
    servers) unless it already runs; returns its record and whether it was started now. What is
    left of a stack that died halfway is stopped first."""
    state = settings.state_dir
    local_stack.apply_local_environment(settings)  # moto's credentials, also for an attach
    if (record := running_stack(state)) is not None:
        return record, False
    if record_path(state).exists():
        stop_stack(state)
    ui = f"http://127.0.0.1:{ui_port}"
    if local_stack.port_in_use(ui_port):
        raise local_stack.StackError(
            f"port {ui_port} is already in use (another local stack? `landfall down` stops one; "
            "--ui-port or LANDFALL_UI_PORT picks another port)"
        )
    if not Path(dagster_bin("dg")).exists():  # `dg dev` runs the stack's Dagster processes
        raise local_stack.StackError(
            "dg is not installed (dagster-dg-cli, in the dev dependency group): make install"
        )
    settings = dataclasses.replace(settings, ui_url=ui)  # links in notifications point here
    prepare(settings)
    logs = logs_dir(state)
    logs.mkdir(parents=True, exist_ok=True)
    # inherited by every process the stack starts, and by theirs: how `down` finds them all
    record = StackRecord(uuid.uuid4().hex, str(settings.s3_endpoint), ui, time.time())
    os.environ[STACK_ID_VARIABLE] = record.stack_id
    try:
        port = int(str(settings.s3_endpoint).rsplit(":", 1)[1])
        s3_server = local_stack.start_s3_server(port, logs / "s3.log", s3_recording(state))
        record.processes.append(record_started("s3", s3_server.pid))
        record.save(record_path(state))
        _ensure_bucket(settings)
        # `dg dev` with a workspace file runs the same webserver, daemon and code servers as
        # `dagster dev`, which Dagster 1.13 marks superseded (it warns on every start)
        command = [dagster_bin("dg"), "dev", "-w", str(WORKSPACE)]
        dagster = start_dagster(
            [*command, "-h", "127.0.0.1", "-p", str(ui_port)], log_path=logs / "dagster.log"
        )
        record.processes.append(record_started("dagster", dagster.pid))
        record.save(record_path(state))
        local_stack.wait_for_http(f"{ui}/server_info", timeout_s=300, proc=dagster)
    except (TimeoutError, RuntimeError) as exc:
        stop_stack(state)
        raise local_stack.StackError(
            f"the stack did not start ({exc}); stopped what had started. See {logs}/"
        ) from exc
    except BaseException:
        stop_stack(state)
        raise
    return record, True


def _ensure_bucket(settings: Settings) -> None:
    s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint, region_name="us-east-1")
    if settings.bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=settings.bucket)


@dataclass
class StopReport:
    found: bool  # a stack was recorded under the state folder
    seconds: float = 0.0
    killed: dict[int, str] = field(default_factory=dict)  # did not stop on SIGTERM in time
    survivors: set[int] = field(default_factory=set)  # pids still running (normally none)
    canceled_runs: list[str] = field(default_factory=list)
    log: Path | None = None  # where the processes that needed SIGKILL are listed

    def line(self) -> str:
        if not self.found:
            return "no local stack recorded here; nothing to stop"
        if self.survivors:
            pids = " ".join(map(str, sorted(self.survivors)))
            return f"processes still running after {self.seconds:.1f}s: {pids}"
        runs = len(self.canceled_runs)
        text = f"stopped in {self.seconds:.1f}s; {runs} interrupted run(s) marked canceled"
        if self.killed:  # a terminal wants the count; the commands are in the log
            text += f"; {len(self.killed)} process(es) needed SIGKILL (listed in {self.log})"
        return text


def stop_stack(state_dir: Path) -> StopReport:
    """Stop every process of the stack recorded under `state_dir` (within STOP_DEADLINE_S), then
    mark the runs the stop interrupted as canceled, so none is left STARTED. Queued runs stay
    queued: the next `up` launches them."""
    record = StackRecord.load(record_path(state_dir))
    if record is None:
        return StopReport(found=False)
    started = time.monotonic()
    outcome = stop_stack_processes(record, grace_s=STOP_DEADLINE_S - 7, kill_s=4)
    report = StopReport(True, time.monotonic() - started, outcome.killed, outcome.survivors)
    if outcome.killed:
        report.log = logs_dir(state_dir) / "stop.log"
        report.log.parent.mkdir(parents=True, exist_ok=True)
        with report.log.open("a", encoding="utf-8") as out:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            out.writelines(
                f"{stamp} needed SIGKILL: {pid} {command}\n"
                for pid, command in sorted(outcome.killed.items())
            )
    if outcome.survivors:  # a live run worker could still write its own end over a cancellation
        return report
    report.canceled_runs = cancel_interrupted_runs(state_dir / "dagster_home")
    record_path(state_dir).unlink(missing_ok=True)
    return report


def cancel_interrupted_runs(dagster_home: Path) -> list[str]:
    """Mark runs left STARTING, STARTED or CANCELING by stopped processes as CANCELED; returns
    their ids. Only for an instance whose processes are all stopped."""
    import dagster as dg

    if not (dagster_home / "dagster.yaml").exists():
        return []
    in_flight = [
        dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED,
        dg.DagsterRunStatus.CANCELING,
    ]
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = [r.dagster_run for r in instance.get_run_records(dg.RunsFilter(statuses=in_flight))]
        for run in runs:
            instance.report_run_canceled(run, message=INTERRUPTED)
    return [run.run_id for run in runs]


def dagster_bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)
