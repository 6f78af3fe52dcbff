"""Stopping a stack finds processes that left its process group and outlived their parent —
as code servers and run workers can — by the stack id they inherited. Real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from devstack.processes import (
    STACK_ID_VARIABLE,
    StackRecord,
    process_state,
    record_started,
    stack_processes,
    stop_stack_processes,
)

# a parent whose child starts its own session and ignores SIGTERM, then both wait. The parent
# sets SIGTERM's default action itself: a process inherits ignored signals, and under `make test`
# a pytest worker was seen to pass on SIGINT, SIGQUIT and SIGTERM ignored (/proc SigIgn
# 0x81005006), which made this parent outlive SIGTERM.
TREE = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_DFL)
subprocess.Popen([sys.executable, "-c",
    "import os, signal, time; os.setsid(); signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print(os.getpid(), flush=True); time.sleep(600)"])
time.sleep(600)
"""


def _signal_lines(pid: int) -> list[str]:
    status = Path(f"/proc/{pid}/status")
    if not status.exists():
        return []
    return [line for line in status.read_text().splitlines() if line.startswith(("State", "Sig"))]


def _start_tree() -> tuple[StackRecord, subprocess.Popen, int]:
    stack_id = uuid.uuid4().hex
    parent = subprocess.Popen(
        [sys.executable, "-c", TREE],
        env={**os.environ, STACK_ID_VARIABLE: stack_id},
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    child = int(parent.stdout.readline())  # printed once its session and handler are set
    record = StackRecord(stack_id, "", "", time.time(), [record_started("tree", parent.pid)])
    return record, parent, child


def test_stop_kills_a_child_in_its_own_session_that_ignores_sigterm() -> None:
    record, parent, child = _start_tree()
    try:
        assert process_state(child).pgid != parent.pid  # left the recorded group
        assert stack_processes(record) == {parent.pid, child}
        # the parent's signal mask and dispositions, for the failure message: this assertion
        # failed intermittently under `make test` (a parent that outlived SIGTERM)
        signals = _signal_lines(parent.pid)
        # grace long enough for a loaded machine to deliver SIGTERM to the parent
        outcome = stop_stack_processes(record, grace_s=5.0, kill_s=5.0)
        parent.wait(timeout=5)
        assert set(outcome.killed) == {child}, signals  # the parent stopped on SIGTERM
        assert not outcome.survivors
        state = process_state(child)
        assert state is None or not state.running
        assert not stack_processes(record)
    finally:
        for pid in (parent.pid, child):
            if (state := process_state(pid)) is not None and state.running:
                os.kill(pid, 9)


def test_an_orphan_is_still_found_by_its_stack_id() -> None:
    record, parent, child = _start_tree()
    try:
        parent.kill()
        parent.wait(timeout=5)
        assert not record.processes[0].alive()
        assert stack_processes(record) == {child}  # reparented, other session: still ours
        outcome = stop_stack_processes(record, grace_s=0.5, kill_s=5.0)
        assert set(outcome.killed) == {child} and not outcome.survivors
    finally:
        if (state := process_state(child)) is not None and state.running:
            os.kill(child, 9)
