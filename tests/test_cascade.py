"""End to end on the embedded default: files dropped into moto's S3 (over HTTP) become raw,
staging, mart and score rows."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import dagster as dg
import pytest

from common.settings import PROJECT_ROOT
from landing.samples import sample_files
from tests.landing.helpers import ZONES, ingest, tick


def _rows(warehouse, sql: str) -> int:
    with warehouse.connect(read_only=True) as con:
        return con.execute(sql).fetchone()[0]


def test_dropped_files_cascade_to_scores(bucket, warehouse, monkeypatch):
    monkeypatch.setenv("LANDFALL_WAREHOUSE_PATH", warehouse.path)
    files = sample_files(customers=12, orders=40, events=30, files_per_zone=1)
    bucket.put(files)
    with dg.instance_for_test() as instance:
        for zone in ZONES.values():
            for request in tick(instance, zone, bucket.landing, None).run_requests:
                ingest(instance, zone, request.partition_key, bucket.landing, warehouse)

        from orchestration.components.snowpark_models import SnowparkModelsComponent
        from orchestration.snowpark import SnowparkResource
        from orchestration.transformation import build_definitions

        transformation = build_definitions()
        dbt_run = dg.materialize(
            transformation.assets,
            instance=instance,
            resources=transformation.resources,
            raise_on_error=True,
        )
        assert dbt_run.success
        mart = next(
            e.materialization
            for e in dbt_run.get_asset_materialization_events()
            if e.materialization.asset_key == dg.AssetKey(["marts", "customer_order_features"])
        )
        mart_columns = {c.name for c in mart.metadata["dagster/column_schema"].value.columns}
        assert {"customer_id", "order_count", "days_since_last_order"} <= mart_columns
        ml_run = dg.materialize(
            [
                a
                for a in dg.build_defs_for_component(SnowparkModelsComponent()).assets or []
                if dg.AssetKey(["ml", "customer_scores"]) in a.keys
            ],
            instance=instance,
            resources={"snowpark": SnowparkResource(local=True, duckdb_path=warehouse.path)},
        )
        assert ml_run.success
        [scored] = [
            e.materialization
            for e in ml_run.get_asset_materialization_events()
            if e.materialization.asset_key == dg.AssetKey(["ml", "customer_scores"])
        ]
        assert scored.metadata["dagster/row_count"].value == 12
        score_columns = {c.name for c in scored.metadata["dagster/column_schema"].value.columns}
        assert {"customer_id", "score", "model_version"} <= score_columns

    orders_in_file = (
        len(list(csv.reader(io.StringIO(files["orders/2026-11-01/orders_0001.csv"].decode())))) - 1
    )
    assert _rows(warehouse, "select count(*) from raw.orders") == orders_in_file
    assert _rows(warehouse, "select count(*) from staging.stg_landing__orders") == orders_in_file
    assert _rows(warehouse, "select count(*) from marts.customer_order_features") == 12
    assert _rows(warehouse, "select count(distinct customer_id) from ml.customer_scores") == 12
    assert (
        _rows(warehouse, "select count(*) from ml.customer_scores where score < 0 or score > 1")
        == 0
    )
    assert (
        _rows(
            warehouse,
            "select count(*) from raw.orders "
            "where _landfall_file = 'orders/2026-11-01/orders_0001.csv'",
        )
        == orders_in_file
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_demo_cascades_through_the_daemon_by_itself(tmp_path):
    """`landfall demo`: real daemon, sensors and automation; no one clicks anything.

    Slow (about five minutes on two cores: eleven runs, each a fresh process); the default
    suite covers the same cascade in-process and the automation decisions with Dagster's own
    evaluation (tests/orchestration/test_cascade_automation.py)."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "devstack.cli",
            "demo",
            "--customers",
            "15",
            "--orders",
            "60",
            "--events",
            "40",
            "--files-per-zone",
            "1",
            "--timeout",
            "600",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=840,
        env={**__import__("os").environ, "LANDFALL_STATE_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    out = result.stdout
    assert "files seen          3  (loaded 3, quarantined 0, pending 0)" in out
    assert "scores written      15" in out
    for table in ("orders", "stg_landing__orders", "customer_order_features", "customer_scores"):
        line = next(x for x in out.splitlines() if f"| {table} " in x)
        assert int(line.rsplit("|", 2)[1]) > 0, line
