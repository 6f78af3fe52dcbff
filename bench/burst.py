"""A burst of files through the whole cascade (raw -> dbt -> scores) on the embedded default
(SQLite instance, queued runs, the warehouse pool, `dagster-daemon` and the three code servers):
wall time, runs, per-file latency p50/p95 — against the naive mode measured in the same run:
one ingestion run per file (`per_file`) and one cascade per file (the next file is dropped when
the previous one's scores are written), so every layer runs once per file.

The naive mode takes 40-70 s per file here, so it is measured on a small sample and
extrapolated linearly to the burst size; the row says so. It starts from a warehouse holding one
cascaded file per zone (untimed): a single file cannot reach the scores before every zone has
data, since the marts join the zones.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.results import record
from devstack import burst

TARGET = "≥ 10× naive, exactly N partitions"


def run(s3, folder: Path, files: int = 1000, naive_sample: int = 6, bad_every: int = 50) -> None:
    bucket_batched, bucket_naive = "bench-burst", "bench-burst-naive"
    for bucket in (bucket_batched, bucket_naive):
        s3.create_bucket(Bucket=bucket)
    burst_set, bad = burst.burst_files(files, bad_every=bad_every, batch="burst")
    timeout = float(os.environ.get("LANDFALL_BENCH_BURST_TIMEOUT", 4 * 3600))
    load_before = os.getloadavg()[0]  # the burst's own processes load the machine

    print(f"burst: {files} files ({len(bad)} bad) at once, one run per zone per tick")
    ours = burst.LocalBurst(folder / "batched", s3, bucket_batched, "per_tick").run(
        burst_set, timeout
    )
    print(f"  ours: {ours.line()}")
    if ours.partitions != files:
        raise AssertionError(f"expected exactly {files} partitions, found {ours.partitions}")

    sample, _ = burst.burst_files(naive_sample, batch="naive")
    warm_up, _ = burst.burst_files(3, batch="naive_warm_up")  # one file per zone
    print(f"burst baseline: {naive_sample} files one at a time, one run per file per layer")
    naive = burst.LocalBurst(folder / "naive", s3, bucket_naive, "per_file").run(
        sample, timeout, one_at_a_time=1, warm_up=warm_up
    )
    print(f"  naive: {naive.line()}")
    naive_wall = naive.wall_s / naive_sample * files
    naive_runs = round(naive.runs / naive_sample * files)
    ratio = naive_wall / ours.wall_s
    record(
        f"burst {files}",
        (
            f"{ours.wall_s:,.0f} s, {ours.runs} runs, {ours.partitions} partitions, "
            f"to scores p50 {ours.p('cascade', 50):,.0f} s p95 {ours.p('cascade', 95):,.0f} s"
        ),
        (
            f"naive {naive_wall:,.0f} s, ~{naive_runs:,} runs (measured on {naive_sample} files "
            f"one at a time: {naive.wall_s:,.0f} s, {naive.runs} runs, extrapolated linearly), "
            f"one file alone to scores p50 {naive.p('cascade', 50):,.0f} s"
        ),
        ratio,
        TARGET.replace("N", f"{files:,}"),
        load_before=load_before,
    )
