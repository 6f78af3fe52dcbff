"""`make bench` runs every benchmark in one process: one must not leave state the next reads
(the definitions benchmark once left landing.zones.SLING_DIR on its temporary project, and the
ingest benchmark after it failed)."""

from __future__ import annotations

import shutil

import pytest

import landing.zones
from bench.definitions import build_ingestion
from common.settings import PROJECT_ROOT


def test_building_a_generated_project_leaves_the_repository_replications_in_place(tmp_path):
    shutil.copytree(PROJECT_ROOT / "landing" / "zones", tmp_path / "zones")
    shutil.copytree(PROJECT_ROOT / "landing" / "sling", tmp_path / "sling")
    before = landing.zones.SLING_DIR
    defs = build_ingestion(tmp_path)
    assert landing.zones.SLING_DIR == before == PROJECT_ROOT / "landing" / "sling"
    assert len(list(defs.assets or [])) == 3


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(1800)  # two zones, a webserver each, on a shared machine
def test_the_scale_benchmark_leaves_environment_databases_and_results_as_found(
    stack, tmp_path, monkeypatch
):
    """bench/scale.py points DAGSTER_HOME, the warehouse and the bucket at each zone it builds
    and creates a Postgres database per size: the benchmarks after it must not see any of it."""
    import os

    import psycopg2

    import bench.results
    from bench import scale

    monkeypatch.setattr(bench.results, "RESULTS", tmp_path / "RESULTS.md")
    names = ("DAGSTER_HOME", "LANDFALL_WAREHOUSE_PATH", "LANDFALL_BUCKET")
    before = {name: os.environ.get(name) for name in names}
    prefix = "landfall_test_isolation_scale"
    scale.run(stack.s3, "t-isolation-scale", (20, 60), keep=30, database_prefix=prefix)
    assert {name: os.environ.get(name) for name in names} == before
    con = psycopg2.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    try:
        with con.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [prefix + "%"])
            assert cur.fetchall() == []
    finally:
        con.close()
    [row] = [x for x in (tmp_path / "RESULTS.md").read_text().splitlines() if "scale" in x]
    assert row.startswith("| scale 60 objects |")
    assert "retention tick" in row
