"""`landfall dev`: the UI serves the three code locations, loaded, with lineage raw -> dbt ->
scores, and the sample drop starts ingestion runs by itself. Slow: starts the whole stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from orchestration.local_stack import free_port, wait_for_http
from orchestration.settings import PROJECT_ROOT
from orchestration.stack import stop

QUERY = """{
  workspaceOrError { ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename } } } }
  assetNodes { assetKey { path } dependencyKeys { path } }
  runsOrError { ... on Runs { results { runId status } } }
}"""


def _graphql(url: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": QUERY}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["data"]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_dev_serves_three_locations_with_lineage_and_starts_runs(tmp_path):
    ui_port = free_port()
    url = f"http://127.0.0.1:{ui_port}"
    env = {**os.environ, "LANDFALL_STATE_DIR": str(tmp_path), "LANDFALL_S3_PORT": str(free_port())}
    dev = subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", "dev", "--ui-port", str(ui_port)],
        cwd=PROJECT_ROOT,
        env=env,
        start_new_session=True,
        stdout=open(tmp_path / "dev.log", "wb"),  # noqa: SIM115 - lives as long as the process
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_http(f"{url}/server_info", timeout_s=300, proc=dev)
        data = _graphql(url)
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
        while not _graphql(url)["runsOrError"]["results"]:
            assert time.monotonic() < deadline, "no run started after the sample drop"
            time.sleep(2)
    finally:
        stop(dev)
