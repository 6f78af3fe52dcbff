"""Ingest throughput of a 1M-row CSV through a whole Dagster run of its zone asset (run, S3
client, download + validation, load + contract merge + ledger row, checks and metadata) vs
DuckDB's native `read_csv` of the same file into a table of a new database file. The landing
runtime alone (`landing.ingest.ingest_objects`, no Dagster) is reported beside it."""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import dagster as dg
import duckdb

from bench.results import record
from landing.bucket import LandingBucket, forget_clients
from landing.identifiers import quote_literal
from landing.ingest import FileOutcome, ingest_objects
from landing.samples import write_orders_csv
from landing.warehouse import DuckDBWarehouse
from landing.zones import ZoneSpec, load_zones
from orchestration.components.landing_zones import build_zone_assets

ROWS = 1_000_000
REPEATS = 3  # interleaved; the medians are compared


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _native_seconds(csv_path: Path, database: Path) -> float:
    """DuckDB's read_csv into a table of a new database file. The path is written into the
    statement, as a DuckDB user types it: a bound parameter would make DuckDB's Python client
    import pandas on its first use (1.5 s here), which is not DuckDB reading a file."""
    started = time.perf_counter()
    con = duckdb.connect(str(database))
    con.execute(
        "CREATE TABLE orders AS SELECT * FROM "
        f"read_csv({quote_literal(str(csv_path))}, header = true)"
    )
    rows = con.execute("SELECT count(*) FROM orders").fetchone()[0]
    con.close()
    assert rows == ROWS, rows
    return time.perf_counter() - started


def _runtime_seconds(
    zone: ZoneSpec, landing: LandingBucket, key: str, folder: Path
) -> tuple[FileOutcome, float, list[str]]:
    """The landing runtime alone (`landing.ingest.ingest_objects`, no Dagster) into a new
    warehouse file; the S3 client is made before the clock starts, as a run makes it once.
    Returns the outcome, the seconds and the object's log messages."""
    warehouse = DuckDBWarehouse(path=str(folder / "runtime.duckdb"))
    client = landing.client()
    started = time.perf_counter()
    [(_, log, outcome)] = list(ingest_objects(zone, client, landing.bucket, [key], warehouse))
    seconds = time.perf_counter() - started
    assert isinstance(outcome, FileOutcome) and outcome.reason is None, outcome
    return outcome, seconds, [message for _, message in log.lines]


def _first_object_seconds(zone: ZoneSpec, s3, landing: LandingBucket, folder: Path) -> float:
    """A 10-row object through the runtime first: what a process pays once (DuckDB's Python
    client imports pandas on its first bound parameter, ~1.5 s here) is then not counted as
    per-row throughput; it is printed instead."""
    small = write_orders_csv(folder / "first.csv", 10)
    s3.upload_file(str(small), landing.bucket, "orders/bench/first.csv")
    (folder / "first").mkdir()
    return _runtime_seconds(zone, landing, "orders/bench/first.csv", folder / "first")[1]


def _dagster_run_seconds(zone: ZoneSpec, landing: LandingBucket, key: str, folder: Path) -> float:
    """The same object through a whole Dagster run (run record, events, S3 client, asset
    checks and metadata) into another new warehouse file."""
    warehouse = DuckDBWarehouse(path=str(folder / "run.duckdb"))
    forget_clients()  # the run builds its S3 client, as a fresh run process does
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(zone.partitions_name, [key])
        started = time.perf_counter()
        result = dg.materialize(
            [build_zone_assets(zone)],
            partition_key=key,
            instance=instance,
            resources={"landing": landing, "warehouse": warehouse},
        )
        seconds = time.perf_counter() - started
    assert result.success
    with warehouse.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.orders").fetchone()[0] == ROWS
    return seconds


def run(s3, landing: LandingBucket, rows: int = ROWS, repeats: int = REPEATS) -> None:
    """Native, the landing runtime and a whole run, interleaved `repeats` times; medians."""
    zone = next(z for z in load_zones() if z.name == "orders")
    native, runtime, whole_run = [], [], []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="landfall-bench-") as tmp:
        folder = Path(tmp)
        csv_path = write_orders_csv(folder / "orders.csv", rows)
        print(f"ingest of {rows} rows ({csv_path.stat().st_size / 1e6:.0f} MB); load {_load()}")
        first = _first_object_seconds(zone, s3, landing, folder)
        for i in range(repeats):
            keys = [f"orders/bench/orders-1m-{i}.csv", f"orders/bench/orders-1m-run-{i}.csv"]
            for key in keys:
                s3.upload_file(str(csv_path), landing.bucket, key)
            attempt = folder / f"attempt-{i}"
            attempt.mkdir()
            native.append(_native_seconds(csv_path, attempt / "native.duckdb"))
            outcome, seconds, messages = _runtime_seconds(zone, landing, keys[0], attempt)
            typed = any("typed by the contract" in m for m in messages) and not any(
                "typed read failed" in m for m in messages
            )
            assert outcome.counts[zone.table_name] == rows, outcome.counts
            runtime.append(seconds)
            whole_run.append(_dagster_run_seconds(zone, landing, keys[1], attempt))
            shutil.rmtree(attempt)
            print(
                f"  attempt {i + 1}: DuckDB read_csv {native[-1]:.2f} s, landing runtime "
                f"{runtime[-1]:.2f} s, a whole Dagster run {whole_run[-1]:.2f} s; load {_load()}"
            )

    loader = "DuckDB read_csv" if "duckdb_read_seconds" in outcome.timing else "Sling"
    if typed:
        loader += " typed by the contract"  # read by the merge as it inserts
    staged = outcome.timing.get("duckdb_read_seconds", outcome.timing.get("sling_seconds", 0))
    merge = outcome.timing["merge_seconds"]
    print(
        f"  last runtime: staging {staged:.2f} s, merge {merge:.2f} s (a typed read is read "
        f"in the merge), download + validation + bookkeeping {runtime[-1] - staged - merge:.2f} s"
    )
    native_rps = rows / statistics.median(native)
    ours_rps = rows / statistics.median(whole_run)
    runtime_rps = rows / statistics.median(runtime)
    ratio = ours_rps / native_rps
    print(
        f"  medians of {repeats}: a whole Dagster run {ours_rps:,.0f} rows/s, DuckDB read_csv "
        f"{native_rps:,.0f} rows/s, ratio {ratio:.2f}; the landing runtime alone "
        f"{runtime_rps:,.0f} rows/s ({runtime_rps / native_rps:.2f}); the process's first "
        f"object (10 rows) {first:.2f} s; load {_load()}"
    )
    record(
        "ingest",
        f"{ours_rps:,.0f} rows/s, a whole Dagster run ({loader}), median of {repeats}; the "
        f"landing runtime alone {runtime_rps:,.0f} rows/s = {runtime_rps / native_rps:.2f}x",
        f"{native_rps:,.0f} rows/s",
        ratio,
        "≥ 0.3× native",
        load_before=load_before,
    )
