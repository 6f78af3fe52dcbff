"""Finding and stopping every process of a local stack, from any shell.

Each process the stack starts (the S3 server, `dg dev`) gets its own session, and the stack
id in its environment (`LANDFALL_STACK_ID`), which everything it starts inherits: the webserver,
the daemon, code servers, run workers and their dbt, Sling and DuckDB children. A stop finds
them by that id in /proc (and as descendants of what was recorded), whatever process group or
session they moved to and whether or not their parent is still alive. Linux only (/proc);
elsewhere only the recorded process groups are signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

STACK_ID_VARIABLE = "LANDFALL_STACK_ID"
PROC = Path("/proc")


def unwind(signum: int, frame: object) -> None:
    """A signal handler: the signal unwinds like Ctrl-C, so `finally` blocks stop the processes
    started in sessions of their own (which would otherwise outlive us)."""
    raise KeyboardInterrupt


@dataclass(frozen=True)
class ProcessState:
    pid: int
    ppid: int
    pgid: int
    state: str  # R, S, D, Z (zombie: exited, not yet reaped), ...
    start_ticks: int  # start time since boot: tells a reused pid from the one recorded

    @property
    def running(self) -> bool:
        return self.state not in ("Z", "X")


def process_state(pid: int) -> ProcessState | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its last ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    return ProcessState(pid, int(fields[1]), int(fields[2]), fields[0], int(fields[19]))


def all_processes() -> dict[int, ProcessState]:
    found = {}
    for entry in PROC.glob("[0-9]*"):
        state = process_state(int(entry.name))
        if state is not None:
            found[state.pid] = state
    return found


def _has_environment_entry(pid: int, entry: bytes) -> bool:
    try:
        return entry in (PROC / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:  # gone, or another user's process
        return False


@dataclass(frozen=True)
class StartedProcess:
    """A process the stack started, in its own session: its pid is its process group id."""

    name: str
    pid: int
    start_ticks: int

    def alive(self) -> bool:
        state = process_state(self.pid)
        return state is not None and state.running and state.start_ticks == self.start_ticks


@dataclass
class StackRecord:
    """What `landfall up` started, written under the state folder so `landfall down` from
    another shell finds it."""

    stack_id: str
    s3_endpoint: str
    ui_url: str
    started_at: float
    processes: list[StartedProcess] = field(default_factory=list)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(asdict(self), indent=2))
        os.replace(partial, path)

    @classmethod
    def load(cls, path: Path) -> StackRecord | None:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        processes = [StartedProcess(**p) for p in data.pop("processes", [])]
        return cls(**data, processes=processes)


def record_started(name: str, pid: int) -> StartedProcess:
    state = process_state(pid)
    return StartedProcess(name, pid, state.start_ticks if state else 0)


def stack_processes(record: StackRecord) -> set[int]:
    """Every running process of the stack: the recorded ones still alive, every process that
    carries the stack id, and all their descendants. Never this process."""
    if not PROC.is_dir():
        return {p.pid for p in record.processes if p.alive()}
    processes = all_processes()
    marker = f"{STACK_ID_VARIABLE}={record.stack_id}".encode()
    found = {p.pid for p in record.processes if p.alive()}
    found |= {
        pid for pid, p in processes.items() if p.running and _has_environment_entry(pid, marker)
    }
    children: dict[int, list[int]] = {}
    for p in processes.values():
        children.setdefault(p.ppid, []).append(p.pid)
    pending = list(found)
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found and processes[child].running:
                found.add(child)
                pending.append(child)
    found.discard(os.getpid())
    return found


def _signal(pids: Iterable[int], groups: Iterable[int], sig: signal.Signals) -> None:
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, sig)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def command_line(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


@dataclass
class StopOutcome:
    killed: dict[int, str] = field(default_factory=dict)  # pid -> command: needed SIGKILL
    survivors: set[int] = field(default_factory=set)  # still running after SIGKILL (normally none)


def stop_stack_processes(
    record: StackRecord, grace_s: float = 10.0, kill_s: float = 4.0
) -> StopOutcome:
    """SIGTERM to every process of the stack (and to any it starts meanwhile), SIGKILL to what
    is left after `grace_s`; reports what needed SIGKILL and what still runs `kill_s` later."""
    signalled: set[int] = set()
    deadline = time.monotonic() + grace_s
    while True:
        # a group is signalled only while its recorded leader is alive: a group id can be
        # reused once all its members are gone
        groups = [p.pid for p in record.processes if p.alive()]
        running = stack_processes(record)
        if not running:
            return StopOutcome()
        if time.monotonic() >= deadline:
            break
        _signal(running - signalled, groups if not signalled else [], signal.SIGTERM)
        signalled |= running
        time.sleep(0.2)
    outcome = StopOutcome(killed={pid: command_line(pid) for pid in running})
    deadline = time.monotonic() + kill_s
    while running and time.monotonic() < deadline:
        _signal(running, [p.pid for p in record.processes if p.alive()], signal.SIGKILL)
        time.sleep(0.2)
        running = stack_processes(record)
    outcome.survivors = running
    return outcome
