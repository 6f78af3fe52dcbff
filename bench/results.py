"""bench/RESULTS.md: one row per benchmark, `ratio` = how many times better than the baseline
(above 1 is better)."""

from __future__ import annotations

import os
import time
from datetime import date
from pathlib import Path

RESULTS = Path(__file__).parent / "RESULTS.md"
HEADER = [
    "| benchmark | ours | baseline | ratio | target | date |",
    "|---|---|---|---|---|---|",
]


def record(
    name: str,
    ours: str,
    baseline: str,
    ratio: float,
    target: str,
    load_before: float | None = None,
) -> None:
    """Insert or replace the row named `name`. `load_before`: the load when the measurement
    started, for a benchmark whose own processes load the machine (a burst)."""
    rows: dict[str, str] = {}
    if RESULTS.exists():
        for line in RESULTS.read_text().splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if line.startswith("|") and cells[0] not in ("benchmark", "---") and len(cells) == 6:
                rows[cells[0]] = line
    shown = f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.2g}"  # 0.002 is not 0.00
    # the machine's load beside the figure: a ratio measured on a busy machine is not a pass
    load = f"load {os.getloadavg()[0]:.2f}"
    if load_before is not None:
        load = f"load {load_before:.2f} at the start, {os.getloadavg()[0]:.2f} after"
    rows[name] = f"| {name} | {ours} ({load}) | {baseline} | {shown} | {target} | {date.today()} |"
    body = [rows[k] for k in sorted(rows)]
    RESULTS.write_text(
        "# Benchmark results\n\nWritten by `make bench` (each benchmark replaces its own row). "
        "`ratio` says how many times better than the baseline measured in the same run "
        "(baseline time ÷ ours, or our throughput ÷ the baseline's): above 1 is better.\n\n"
        + "\n".join(HEADER + body)
        + "\n"
    )
    print(f"  recorded: {rows[name]}")


QUIET_LOAD = 1.5  # the developers' guide: record on a machine whose load is below ~1.5


def wait_until_quiet(name: str, timeout_s: float = 300.0, poll_s: float = 5.0) -> float:
    """Before `name` starts, wait for the one-minute load to fall below QUIET_LOAD (the previous
    benchmark's processes leave it high for a minute or two). Returns the load it starts at;
    after `timeout_s` it starts anyway and says so, and the row shows that load."""
    deadline = time.monotonic() + timeout_s
    load = os.getloadavg()[0]
    while load >= QUIET_LOAD and time.monotonic() < deadline:
        time.sleep(poll_s)  # polling the kernel's load figure, not waiting for a result
        load = os.getloadavg()[0]
    state = "quiet" if load < QUIET_LOAD else f"still busy after {timeout_s:.0f} s"
    print(f"== {name}: load {load:.2f} ({state})", flush=True)
    return load
