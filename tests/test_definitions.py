"""The three code locations load on their own and join into one asset graph."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import pytest

from common.settings import PROJECT_ROOT
from orchestration.dbt_project import dbt_project, prepare_manifest

LOCATIONS = ("ingestion", "transformation", "ml")


def _defs(location: str) -> dg.Definitions:
    module = __import__(f"orchestration.{location}", fromlist=["defs"])
    return module.defs


@pytest.mark.parametrize("location", LOCATIONS)
def test_location_definitions_are_loadable(location: str) -> None:
    defs = _defs(location)
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_asset_graph().materializable_asset_keys
    assert defs.resolve_all_job_defs(), f"{location} offers no job to launch from the UI"


def test_lineage_crosses_locations_raw_to_dbt_to_scores() -> None:
    deps: dict[dg.AssetKey, set[dg.AssetKey]] = {}
    owners: dict[dg.AssetKey, str] = {}
    for location in LOCATIONS:
        graph = _defs(location).resolve_asset_graph()
        for key in graph.materializable_asset_keys:
            owners[key] = location
            deps[key] = set(graph.get(key).parent_keys)
    raw_orders = dg.AssetKey(["raw", "orders"])
    stg_orders = dg.AssetKey(["staging", "stg_landing__orders"])
    mart = dg.AssetKey(["marts", "customer_order_features"])
    scores = dg.AssetKey(["ml", "customer_scores"])
    assert owners[raw_orders] == "ingestion"
    assert owners[stg_orders] == "transformation" and raw_orders in deps[stg_orders]
    assert owners[scores] == "ml" and mart in deps[scores]
    # every dbt source is an ingestion asset: no dangling raw table in the graph
    sources = {d for key, ds in deps.items() if owners[key] == "transformation" for d in ds}
    assert {d for d in sources if d.path[0] == "raw"} <= {
        k for k, loc in owners.items() if loc == "ingestion"
    }


def test_every_group_is_the_prefix_of_its_asset_keys() -> None:
    """The UI's groups (raw, staging, intermediate, marts, ml) read like the keys under them."""
    groups = {}
    for location in LOCATIONS:
        graph = _defs(location).resolve_asset_graph()
        for key in graph.materializable_asset_keys:
            groups[key.to_user_string()] = graph.get(key).group_name
    assert {k: g for k, g in groups.items() if g != k.split("/")[0]} == {}
    assert {"raw", "staging", "marts", "ml"} <= set(groups.values())


# Declared otherwise on purpose: model training is manual_only (ml/models/churn/defs.yaml).
DECLARED_MANUAL = {dg.AssetKey(["ml", "churn_model"])}


def test_every_asset_with_upstreams_defaults_to_on_upstream_change() -> None:
    for location in LOCATIONS:
        graph = _defs(location).resolve_asset_graph()
        for key in graph.materializable_asset_keys:
            node = graph.get(key)
            if key in DECLARED_MANUAL:
                assert node.automation_condition is None, key
            elif node.parent_keys:
                condition = node.automation_condition
                assert condition is not None and condition.get_label() == "on_upstream_change", key


def _validate_workspace(env: dict[str, str] | None = None) -> str:
    """`dagster definitions validate` of infra/workspace.yaml; its output, once every location
    passed."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "definitions",
            "validate",
            "-w",
            str(PROJECT_ROOT / "infra" / "workspace.yaml"),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    output = result.stderr + result.stdout
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for location in LOCATIONS:
        assert f"Validation successful for code location {location}" in output
    return output


# the embedded workspace's validate, with its warnings, is in tests/test_dg_project.py


PLACEHOLDER_PROD_ENV = {
    "LANDFALL_ENV": "prod",
    **{
        f"SNOWFLAKE_{name}": "placeholder"
        for name in ("ACCOUNT", "USER", "PASSWORD", "ROLE", "WAREHOUSE", "DATABASE", "SCHEMA")
    },
    "AWS_ACCESS_KEY_ID": "placeholder",
    "AWS_SECRET_ACCESS_KEY": "placeholder",
}


def test_workspace_validates_in_prod_with_placeholder_credentials(tmp_path) -> None:
    """What a deployment loads: every location with LANDFALL_ENV=prod (Snowflake warehouse,
    dbt's prod target, a Snowpark session), credentials only named, never connected."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LANDFALL_", "SNOWFLAKE_", "DAGSTER_HOME"))
    }
    env |= PLACEHOLDER_PROD_ENV | {"DAGSTER_HOME": str(home)}
    # the prod target's manifest (transforms/target/prod/), as the transformation image builds
    # it: `dbt parse` with placeholder credentials, no connection
    with pytest.MonkeyPatch.context() as patch:
        for name, value in PLACEHOLDER_PROD_ENV.items():
            patch.setenv(name, value)
        project = dbt_project("prod")
        prepare_manifest(project)
    assert project.manifest_path.parent.name == "prod"
    _validate_workspace(env)
