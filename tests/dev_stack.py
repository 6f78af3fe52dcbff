"""`landfall dev` started on free ports for the slow UI tests, stopped however the test ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.settings import PROJECT_ROOT
from devstack.local_stack import free_port, wait_for_http
from devstack.stack import stop, stop_stack


@contextmanager
def running_landfall_dev(state_dir: Path) -> Iterator[str]:
    """Start `landfall dev` with its state under `state_dir`; yield the UI URL once it answers."""
    ui_port = free_port()
    url = f"http://127.0.0.1:{ui_port}"
    # everything derived from `state_dir`, nothing from the test session's local environment
    inherited = ("LANDFALL_", "DAGSTER_HOME", "SLING_HOME_DIR")
    env = {
        # The code servers' gRPC calls (a run's launch among them) time out after 60 s by
        # default, which a loaded two-core machine can exceed; as devstack/burst.py does.
        "DAGSTER_GRPC_TIMEOUT_SECONDS": "180",
        **{k: v for k, v in os.environ.items() if not k.startswith(inherited)},
        "LANDFALL_STATE_DIR": str(state_dir),
        "LANDFALL_S3_PORT": str(free_port()),
    }
    with (state_dir / "dev.log").open("wb") as log:
        dev = subprocess.Popen(
            [sys.executable, "-m", "devstack.cli", "dev", "--ui-port", str(ui_port)],
            cwd=PROJECT_ROOT,
            env=env,
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_http(f"{url}/server_info", timeout_s=300, proc=dev)
        yield url
    finally:
        stop(dev)  # `landfall dev` stops its stack on SIGTERM as on Ctrl-C
        stop_stack(state_dir)  # and if it could not, whatever it left


def graphql(url: str, query: str) -> dict:
    """The `data` of one GraphQL query against the running UI at `url`."""
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["data"]
