"""Ingest throughput of a 1M-row CSV through Landfall's landing runtime (download + validation +
staging + contract merge + ledger row) vs DuckDB's native `read_csv` of the same file into a
table; the same object through a whole Dagster run is reported beside it."""

from __future__ import annotations

import os
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
) -> tuple[FileOutcome, float]:
    """The landing runtime alone (`landing.ingest.ingest_objects`, no Dagster) into a new
    warehouse file; the S3 client is made before the clock starts, as a run makes it once."""
    warehouse = DuckDBWarehouse(path=str(folder / "runtime.duckdb"))
    client = landing.client()
    started = time.perf_counter()
    [(_, _, outcome)] = list(ingest_objects(zone, client, landing.bucket, [key], warehouse))
    seconds = time.perf_counter() - started
    assert isinstance(outcome, FileOutcome) and outcome.reason is None, outcome
    return outcome, seconds


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


def run(s3, landing: LandingBucket, rows: int = ROWS) -> None:
    zone = next(z for z in load_zones() if z.name == "orders")
    with tempfile.TemporaryDirectory(prefix="landfall-bench-") as tmp:
        folder = Path(tmp)
        csv_path = write_orders_csv(folder / "orders.csv", rows)
        keys = ["orders/bench/orders-1m.csv", "orders/bench/orders-1m-run.csv"]
        for key in keys:
            s3.upload_file(str(csv_path), landing.bucket, key)
        print(f"ingest of {rows} rows ({csv_path.stat().st_size / 1e6:.0f} MB); load {_load()}")
        native = _native_seconds(csv_path, folder / "native.duckdb")
        first = _first_object_seconds(zone, s3, landing, folder)
        outcome, ours = _runtime_seconds(zone, landing, keys[0], folder)
        assert outcome.counts[zone.table_name] == rows, outcome.counts
        whole_run = _dagster_run_seconds(zone, landing, keys[1], folder)

    if "duckdb_read_seconds" in outcome.timing:
        loader, staged = "DuckDB read_csv", outcome.timing["duckdb_read_seconds"]
    else:
        loader, staged = "Sling", outcome.timing["sling_seconds"]
    merge = outcome.timing["merge_seconds"]
    print(
        f"  of which staging ({loader}) {staged:.2f} s, merge {merge:.2f} s, "
        f"download + validation + bookkeeping {ours - staged - merge:.2f} s"
    )
    ours_rps, native_rps, run_rps = rows / ours, rows / native, rows / whole_run
    ratio = ours_rps / native_rps
    print(
        f"  landing runtime ({loader}) {ours:.2f} s ({ours_rps:,.0f} rows/s), DuckDB read_csv "
        f"{native:.2f} s ({native_rps:,.0f} rows/s), ratio {ratio:.2f}; a whole Dagster run "
        f"{whole_run:.2f} s (ratio {run_rps / native_rps:.2f}); the process's first object "
        f"(10 rows) {first:.2f} s; load {_load()}"
    )
    record(
        "ingest",
        f"{ours_rps:,.0f} rows/s, landing runtime staged by {loader}; a whole Dagster run "
        f"{run_rps:,.0f} rows/s = {run_rps / native_rps:.2f}x",
        f"{native_rps:,.0f} rows/s",
        ratio,
        "≥ 0.3× native",
    )
