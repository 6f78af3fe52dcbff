"""`landfall dev`: the UI serves the three code locations, loaded, with lineage raw -> dbt ->
scores, and the sample drop starts ingestion runs by itself. Slow: starts the whole stack."""

from __future__ import annotations

import time

import pytest

from tests.dev_stack import graphql, running_landfall_dev

QUERY = """{
  workspaceOrError { ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename } } } }
  assetNodes { assetKey { path } dependencyKeys { path } }
  runsOrError { ... on Runs { results { runId status } } }
}"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_dev_serves_three_locations_with_lineage_and_starts_runs(tmp_path):
    with running_landfall_dev(tmp_path) as url:
        data = graphql(url, QUERY)
        locations = {
            e["name"]: (e["loadStatus"], e["locationOrLoadError"]["__typename"])
            for e in data["workspaceOrError"]["locationEntries"]
        }
        assert locations == {
            name: ("LOADED", "RepositoryLocation") for name in ("ingestion", "transformation", "ml")
        }
        deps = {
            "/".join(n["assetKey"]["path"]): {"/".join(k["path"]) for k in n["dependencyKeys"]}
            for n in data["assetNodes"]
        }
        assert "raw/orders" in deps["staging/stg_landing__orders"]
        assert "marts/customer_order_features" in deps["ml/customer_scores"]
        # the sample files dropped by `landfall dev` start runs without anyone clicking
        deadline = time.monotonic() + 240
        while not graphql(url, QUERY)["runsOrError"]["results"]:
            assert time.monotonic() < deadline, "no run started after the sample drop"
            time.sleep(2)
