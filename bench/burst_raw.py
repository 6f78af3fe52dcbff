"""1,000 small orders CSVs dropped at once on the embedded default, with the real daemon and
code servers: seconds from the drop to the last raw ledger row (the ledger row is written in
the transaction that puts the object's rows in raw), against one `sling run` stream reading the
same 1,000 objects from the same local S3 prefix into DuckDB (Sling seeing all the files
together: the tool's own best case), measured in the same run. The same burst also gives
per-file p50/p95 (drop -> ledger row, and drop -> Dagster's partition materialized, written
after the run's ledger rows) and, with the three code locations, drop -> scores; the load
average is printed before and after, and stored in the row."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import yaml

from bench.results import record
from devstack import burst
from landing.samples import orders_csv

TARGET = "≥ 0.1 (within 10× of one Sling stream over the same objects)"


def _files(count: int, rows: int = 20) -> dict[str, bytes]:
    return {
        f"orders/burst-raw/f{i:04d}.csv": orders_csv(range(i * rows + 1, (i + 1) * rows + 1), 50, 7)
        for i in range(count)
    }


def _sling_anchor(s3_endpoint: str, bucket: str, prefix: str, folder: Path) -> tuple[float, int]:
    """One Sling stream over the prefix into a DuckDB file, with the file URL per row."""
    from sling import SLING_BIN

    folder.mkdir(parents=True, exist_ok=True)
    replication = {
        "source": "LANDING",
        "target": "ANCHOR",
        "defaults": {"mode": "full-refresh"},
        "streams": {
            f"s3://{bucket}/{prefix}": {
                "object": "main.orders",
                "source_options": {"format": "csv", "header": True},
            }
        },
    }
    (folder / "replication.yaml").write_text(yaml.safe_dump(replication))
    env = {
        **os.environ,
        "LANDING": json.dumps(
            {
                "type": "s3",
                "bucket": bucket,
                "access_key_id": "test",
                "secret_access_key": "test",
                "endpoint": s3_endpoint,
                "region": "us-east-1",
            }
        ),
        "ANCHOR": json.dumps({"type": "duckdb", "instance": str(folder / "anchor.duckdb")}),
        "SLING_STREAM_URL_COLUMN": "true",
        "SLING_DISABLE_TELEMETRY": "true",
        "TMPDIR": str(folder),
    }
    started = time.monotonic()
    subprocess.run(
        [SLING_BIN, "run", "-r", str(folder / "replication.yaml")],
        env=env,
        check=True,
        capture_output=True,
    )
    seconds = time.monotonic() - started
    import duckdb

    with duckdb.connect(str(folder / "anchor.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM main.orders").fetchone()[0]
    return seconds, rows


def run(s3, s3_endpoint: str, folder: Path, files: int | None = None) -> None:
    """`BURST_RAW_FILES` (default 1,000) files; `BURST_RAW_CASCADE=0` leaves out the
    transformation and ml locations (raw only, no drop → scores)."""
    files = files or int(os.environ.get("BURST_RAW_FILES", 1000))
    cascade = os.environ.get("BURST_RAW_CASCADE", "1") != "0"
    bucket = "bench-burst-raw"
    s3.create_bucket(Bucket=bucket)
    dropped = _files(files)
    load_before = os.getloadavg()[0]
    # the marts join every zone: the scores need one cascaded file per zone before the burst
    warm_up = burst.burst_files(3, batch="raw-warm-up")[0] if cascade else None
    print(
        f"burst raw: {files} orders files (20 rows each) at once, "
        + ("all three code locations (drop → scores too)" if cascade else "ingestion only")
        + f"; load average {_load()}"
    )
    ours = burst.LocalBurst(folder / "ours", s3, bucket, "per_tick", cascade=cascade).run(
        dropped, float(os.environ.get("LANDFALL_BENCH_BURST_TIMEOUT", 3600)), warm_up=warm_up
    )
    print(f"  ours: {ours.line()}")
    print("  runs (seconds after the drop):\n    " + "\n    ".join(ours.timeline))
    if ours.partitions != files or len(ours.ledger_latency_s) != files:
        raise AssertionError(f"expected {files} loaded partitions and ledger rows: {ours.line()}")
    anchor_s, anchor_rows = _sling_anchor(
        s3_endpoint, bucket, "orders/burst-raw/", folder / "sling"
    )
    if anchor_rows != files * 20:
        raise AssertionError(f"the Sling anchor read {anchor_rows} rows, not {files * 20}")
    print(f"  anchor: one Sling stream over the prefix, {anchor_s:.1f} s, {anchor_rows} rows")
    last_row = max(ours.ledger_latency_s)
    scores = (
        f"; drop → scores last {max(ours.cascade_latency_s):,.1f} s (target ≤ 120 s), "
        f"p50 {ours.p('cascade', 50):,.1f} s p95 {ours.p('cascade', 95):,.1f} s"
        if ours.cascade_latency_s
        else ""
    )
    print(f"  drop → last raw ledger row {last_row:.1f} s{scores}; load average {_load()}")
    record(
        f"burst {files} raw",
        (
            f"{last_row:,.1f} s drop → last raw ledger row, {ours.runs} runs, ledger row "
            f"p50 {ours.p('ledger', 50):,.1f} s p95 {ours.p('ledger', 95):,.1f} s, partition "
            f"materialized p95 {ours.p('raw', 95):,.1f} s{scores}"
        ),
        f"one Sling stream over the same {files} objects {anchor_s:,.1f} s",
        anchor_s / last_row,
        TARGET,
        load_before=load_before,
    )


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
