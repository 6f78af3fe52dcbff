"""A benchmark stopped by SIGTERM (`timeout`, a killed job) leaves no process behind: its S3
server, daemon and code servers run in sessions of their own and outlived it once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from common.settings import PROJECT_ROOT
from devstack.burst import wait_until


def _processes_under(folder: Path) -> list[int]:
    """Processes whose command line or environment names `folder` (their state lives there)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if state != "Z" and str(folder).encode() in cmdline + environ:
            found.append(int(pid))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds processes in /proc (Linux)")
@pytest.mark.timeout(300)
def test_sigterm_mid_burst_stops_every_process_the_benchmark_started(tmp_path: Path) -> None:
    env = os.environ | {
        "TMPDIR": str(tmp_path),  # the benchmark's state folder is made here
        "BURST_RAW_FILES": "5",
        "BURST_RAW_CASCADE": "0",
    }
    bench = subprocess.Popen(
        [sys.executable, "-m", "bench", "burst-raw"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # the daemon starts after the code servers: then the benchmark has everything running
        wait_until(lambda: list(tmp_path.glob("*/burst-raw/ours/daemon.log")), 240, "the daemon")
        assert len(_processes_under(tmp_path)) >= 4  # S3, code server, its gRPC child, daemon
        bench.send_signal(signal.SIGTERM)
        bench.wait(timeout=120)
        assert _processes_under(tmp_path) == []
    finally:
        if bench.poll() is None:
            bench.kill()
        for pid in _processes_under(tmp_path):
            os.kill(pid, signal.SIGKILL)
