"""End to end on the embedded default: files dropped into moto's S3 (over HTTP) become raw,
staging, mart and score rows, with every asset check passing on clean data."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from common.settings import PROJECT_ROOT
from landing.samples import sample_files
from sensors.notifications import notify_on_check_failure
from tests.freshness_daemon import daemon_workspace, evaluate_freshness
from tests.landing.helpers import ZONES, ingest, tick

# what `landfall demo` drops by default
DEMO_SAMPLE = {"customers": 50, "orders": 400, "events": 300, "files_per_zone": 2}


def _rows(warehouse, sql: str) -> int:
    with warehouse.connect(read_only=True) as con:
        return con.execute(sql).fetchone()[0]


def _check_evaluations(instance: dg.DagsterInstance) -> list[dg.AssetCheckEvaluation]:
    return [
        record.event_log_entry.dagster_event.event_specific_data
        for run in instance.get_runs()
        for record in instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
    ]


def _notifications(sink: Path, start: int) -> list[dict]:
    lines = sink.read_text().splitlines()[start:] if sink.exists() else []
    return [json.loads(line) for line in lines]


def test_the_sample_drop_cascades_to_scores_with_every_check_passing(
    bucket, warehouse, landfall_env, monkeypatch
):
    """`make demo`'s drop (two files per zone) through raw, dbt and scores:
    rows arrive, every asset check of every location passes, and no notification is written —
    neither a failed check nor a freshness failure right after start-up."""
    monkeypatch.setenv("LANDFALL_WAREHOUSE_PATH", warehouse.path)
    monkeypatch.delenv("LANDFALL_NOTIFY_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("LANDFALL_NOTIFY_SMTP_HOST", raising=False)
    sink = Path(landfall_env.state_dir) / "notifications.jsonl"
    sink_start = len(sink.read_text().splitlines()) if sink.exists() else 0
    files = sample_files(**DEMO_SAMPLE)
    bucket.put(files)

    from orchestration import ingestion, ml
    from orchestration.snowpark import SnowparkResource
    from orchestration.transformation import build_definitions

    transformation = build_definitions()
    with dg.instance_for_test() as instance:
        check_sensor = dg.build_sensor_context(instance=instance)
        notify_on_check_failure(check_sensor)  # starts its cursor before anything runs

        for zone in ZONES.values():
            for request in tick(instance, zone, bucket.landing, None).run_requests:
                # the load's run reports its checks (file_accepted, schema_change) itself
                ingest(instance, zone, request.partition_key, bucket.landing, warehouse)

        dbt_run = dg.materialize(
            [*transformation.assets, *transformation.asset_checks],
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
                *(a for a in ml.defs.assets if dg.AssetKey(["ml", "customer_scores"]) in a.keys),
                *ml.defs.asset_checks,
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
        assert scored.metadata["dagster/row_count"].value == DEMO_SAMPLE["customers"]
        score_columns = {c.name for c in scored.metadata["dagster/column_schema"].value.columns}
        assert {"customer_id", "score", "model_version"} <= score_columns

        # every check of every location ran, and every evaluation passed
        evaluations = _check_evaluations(instance)
        failed = [
            f"{e.asset_check_key.to_user_string()}: {e.description}"
            for e in evaluations
            if not e.passed
        ]
        assert not failed, failed
        declared = {
            key
            for defs in (ingestion.defs, transformation, ml.defs)
            for definition in [*(defs.assets or []), *(defs.asset_checks or [])]
            for key in getattr(definition, "check_keys", [])
            if key.asset_key != dg.AssetKey(["ml", "churn_model"])  # trained by hand, not here
        }
        assert {e.asset_check_key for e in evaluations} == declared

        # nothing to notify: no failed check, and no freshness failure right after start-up
        notify_on_check_failure(check_sensor)
        with daemon_workspace(
            instance, "orchestration.ingestion", "orchestration.transformation"
        ) as workspace:
            evaluate_freshness(workspace)
        freshness_sensors = [
            sensor
            for defs in (ingestion.defs, transformation)
            for sensor in defs.sensors or []
            if sensor.name.endswith("_freshness_failure")
        ]
        assert len(freshness_sensors) == 2  # one per location with declared freshness
        for sensor in freshness_sensors:
            sensor(dg.build_sensor_context(instance=instance))
        states = instance.get_freshness_state_records(
            [dg.AssetKey(["raw", "orders"]), dg.AssetKey(["marts", "customer_order_features"])]
        )
        assert {s.freshness_state.value for s in states.values()} == {"PASS"}
        assert not [r for r in instance.get_runs() if r.status == dg.DagsterRunStatus.FAILURE]
    assert _notifications(sink, sink_start) == []

    orders_in_files = sum(
        len(list(csv.reader(io.StringIO(body.decode())))) - 1
        for key, body in files.items()
        if key.startswith("orders/")
    )
    assert _rows(warehouse, "select count(*) from raw.orders") == orders_in_files
    assert _rows(warehouse, "select count(*) from staging.stg_landing__orders") == orders_in_files
    assert (
        _rows(warehouse, "select count(*) from marts.customer_order_features")
        == DEMO_SAMPLE["customers"]
    )
    assert (
        _rows(warehouse, "select count(distinct customer_id) from ml.customer_scores")
        == DEMO_SAMPLE["customers"]
    )
    assert (
        _rows(warehouse, "select count(*) from ml.customer_scores where score < 0 or score > 1")
        == 0
    )
    first_file = next(k for k in files if k.startswith("orders/"))
    first_rows = len(list(csv.reader(io.StringIO(files[first_file].decode())))) - 1
    assert (
        _rows(warehouse, f"select count(*) from raw.orders where _landfall_file = '{first_file}'")
        == first_rows
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
