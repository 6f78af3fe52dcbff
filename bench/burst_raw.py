"""1,000 small orders CSVs dropped at once on the embedded default, with the real daemon and
code server: seconds from the drop to the last raw ledger row, against one `sling run` stream
reading the same 1,000 objects from the same local S3 prefix into DuckDB (Sling seeing all the
files together: the tool's own best case), measured in the same run."""

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


def run(s3, s3_endpoint: str, folder: Path, files: int = 1000) -> None:
    bucket = "bench-burst-raw"
    s3.create_bucket(Bucket=bucket)
    dropped = _files(files)
    print(f"burst raw: {files} orders files (20 rows each) at once, ingestion location only")
    ours = burst.LocalBurst(folder / "ours", s3, bucket, "per_tick", cascade=False).run(
        dropped, float(os.environ.get("LANDFALL_BENCH_BURST_TIMEOUT", 3600))
    )
    print(f"  ours: {ours.line()}")
    if ours.partitions != files or len(ours.raw_latency_s) != files:
        raise AssertionError(f"expected {files} loaded partitions: {ours.line()}")
    anchor_s, anchor_rows = _sling_anchor(
        s3_endpoint, bucket, "orders/burst-raw/", folder / "sling"
    )
    if anchor_rows != files * 20:
        raise AssertionError(f"the Sling anchor read {anchor_rows} rows, not {files * 20}")
    print(f"  anchor: one Sling stream over the prefix, {anchor_s:.1f} s, {anchor_rows} rows")
    last_raw = max(ours.raw_latency_s)
    record(
        f"burst {files} raw",
        (
            f"{last_raw:,.1f} s drop → last raw row, {ours.runs} runs, raw latency "
            f"p50 {ours.p('raw', 50):,.1f} s p95 {ours.p('raw', 95):,.1f} s"
        ),
        f"one Sling stream over the same {files} objects {anchor_s:,.1f} s",
        anchor_s / last_raw,
        TARGET,
    )
