"""`landfall setup` rebuilds the dbt manifest whenever the project's files change — a model
deleted, renamed, or restored with an old modification time — and the Dagster definitions built
from that project follow it. Works on a copy of transforms/; the real project is not touched."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from dagster_dbt import DbtProject

from orchestration.dbt_project import TRANSFORMS_DIR, prepare_manifest
from orchestration.transformation_definitions import build_definitions

PROBE = "select count(*) as orders from {{ ref('fct_orders') }}\n"


@pytest.fixture
def project(tmp_path: Path) -> DbtProject:
    root = tmp_path / "transforms"
    shutil.copytree(TRANSFORMS_DIR, root, ignore=shutil.ignore_patterns("target", "logs"))
    return DbtProject(project_dir=root, profiles_dir=root, target="local")


def _models(project: DbtProject) -> dict[str, dict]:
    manifest = json.loads(project.manifest_path.read_text())
    return {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}


def _asset_names(project: DbtProject) -> set[str]:
    graph = build_definitions(project).resolve_asset_graph()
    return {key.path[-1] for key in graph.materializable_asset_keys}


# about a minute of dbt parses and definition loads: `make test-slow`
@pytest.mark.slow
def test_manifest_and_definitions_follow_edits_renames_and_deletions(
    project: DbtProject,
) -> None:
    marts = Path(project.project_dir) / "models" / "marts"
    probe = marts / "probe_order_count.sql"
    probe.write_text(PROBE)
    assert prepare_manifest(project)
    assert _models(project)["probe_order_count"]["depends_on"]["nodes"] == [
        "model.landfall.fct_orders"
    ]
    assert "probe_order_count" in _asset_names(project)
    assert not prepare_manifest(project), "nothing changed, yet the project was parsed again"

    # an editor or `git checkout` restores another version with an older modification time
    built = project.manifest_path.stat().st_mtime
    probe.write_text(PROBE.replace("fct_orders", "customer_order_features"))
    os.utime(probe, (built - 3600, built - 3600))
    assert prepare_manifest(project)
    assert _models(project)["probe_order_count"]["depends_on"]["nodes"] == [
        "model.landfall.customer_order_features"
    ]

    probe.rename(marts / "probe_renamed.sql")
    assert prepare_manifest(project)
    models = _models(project)
    assert "probe_order_count" not in models and "probe_renamed" in models
    names = _asset_names(project)
    assert "probe_order_count" not in names and "probe_renamed" in names

    (marts / "probe_renamed.sql").unlink()
    assert prepare_manifest(project)
    assert "probe_renamed" not in _models(project)
    names = _asset_names(project)
    assert "probe_renamed" not in names
    assert {"fct_orders", "customer_order_features"} <= names  # the rest is still there


def test_missing_manifest_names_the_setup_command(project: DbtProject) -> None:
    with pytest.raises(FileNotFoundError, match="run `landfall setup`"):
        build_definitions(project)  # the copy has no target/: never parsed
