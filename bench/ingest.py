"""Ingest throughput of a 1M-row CSV through Landfall's Sling path (download + validation +
Sling + contract merge) vs DuckDB's native `read_csv` of the same file into a table."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import dagster as dg
import duckdb

from bench.results import record
from landing.bucket import LandingBucket
from landing.samples import write_orders_csv
from landing.warehouse import DuckDBWarehouse
from landing.zones import load_zones
from orchestration.components.landing_zones import build_zone_assets

ROWS = 1_000_000


def run(s3, landing: LandingBucket, rows: int = ROWS) -> None:
    zone = next(z for z in load_zones() if z.name == "orders")
    with tempfile.TemporaryDirectory(prefix="landfall-bench-") as tmp:
        folder = Path(tmp)
        csv_path = write_orders_csv(folder / "orders.csv", rows)
        key = "orders/bench/orders-1m.csv"
        s3.upload_file(str(csv_path), landing.bucket, key)
        print(
            f"ingest of {rows} rows ({csv_path.stat().st_size / 1e6:.0f} MB); load average "
            + " ".join(f"{x:.2f}" for x in os.getloadavg())
        )

        native_db = folder / "native.duckdb"
        started = time.perf_counter()
        con = duckdb.connect(str(native_db))
        con.execute(
            "CREATE TABLE orders AS SELECT * FROM read_csv(?, header = true)", [str(csv_path)]
        )
        native_rows = con.execute("SELECT count(*) FROM orders").fetchone()[0]
        con.close()
        native = time.perf_counter() - started

        warehouse = DuckDBWarehouse(path=str(folder / "warehouse.duckdb"))
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions(zone.partitions_name, [key])
            started = time.perf_counter()
            result = dg.materialize(
                [build_zone_assets(zone)],
                partition_key=key,
                instance=instance,
                resources={"landing": landing, "warehouse": warehouse},
            )
            ours = time.perf_counter() - started
        assert result.success
        with warehouse.connect(read_only=True) as con:
            loaded = con.execute("SELECT count(*) FROM raw.orders").fetchone()[0]
        assert loaded == native_rows == rows, (loaded, native_rows)

    main = next(
        m
        for m in result.asset_materializations_for_node(f"ingest_{zone.name}")
        if m.asset_key.path == zone.asset_key_path
    )
    # the loader the embedded default chose for this zone (README: which loader where)
    if "landfall/duckdb_read_seconds" in main.metadata:
        loader, staged = "DuckDB read_csv", main.metadata["landfall/duckdb_read_seconds"].value
    else:
        loader, staged = "Sling", main.metadata["landfall/sling_seconds"].value
    merge = main.metadata["landfall/merge_seconds"].value
    print(
        f"  of which staging ({loader}) {staged:.1f} s, merge {merge:.1f} s, "
        f"download + validation + bookkeeping {ours - staged - merge:.1f} s"
    )
    ours_rps, native_rps = rows / ours, rows / native
    ratio = ours_rps / native_rps
    print(
        f"  Landfall ({loader}) {ours:.1f} s ({ours_rps:,.0f} rows/s), DuckDB read_csv "
        f"{native:.1f} s ({native_rps:,.0f} rows/s), ratio {ratio:.2f}; load average "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    record(
        "ingest",
        f"{ours_rps:,.0f} rows/s, staged by {loader}",
        f"{native_rps:,.0f} rows/s",
        ratio,
        "≥ 0.3× native",
    )
