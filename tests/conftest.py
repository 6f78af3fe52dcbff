"""Shared fixtures: the embedded stack for tests — moto's S3 server over real HTTP on a free
port, DuckDB extensions installed offline, a state folder per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from common.settings import Settings, get_settings
from devstack import local_stack
from devstack.stack import stop
from landing.bucket import LandingBucket
from landing.warehouse import DuckDBWarehouse


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--snapshot-update",
        action="store_true",
        dest="snapshot_update",
        help="rewrite tests/snapshots/*.txt from the built Definitions (`make snapshots`)",
    )


@dataclass
class Stack:
    settings: Settings
    s3: object
    landing: LandingBucket

    def put(self, files: dict[str, bytes]) -> None:
        for key, body in files.items():
            self.s3.put_object(Bucket=self.landing.bucket, Key=key, Body=body)


@pytest.fixture(scope="session", autouse=True)
def landfall_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Every test runs against a local environment under a temporary state folder."""
    state = tmp_path_factory.mktemp("landfall-state")
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith(("LANDFALL_", "SNOWFLAKE_"))]:
        del os.environ[name]
    os.environ.update(
        {
            "LANDFALL_STATE_DIR": str(state),
            "LANDFALL_S3_PORT": str(local_stack.free_port()),
            "LANDFALL_ENV": "local",
        }
    )
    settings = get_settings()
    local_stack.apply_local_environment(settings)
    try:
        yield settings
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def stack(landfall_env: Settings) -> Iterator[Stack]:
    settings = landfall_env
    local_stack.ensure_duckdb_extensions()
    port = int(settings.s3_endpoint.rsplit(":", 1)[1])
    server = local_stack.start_s3_server(port, settings.state_dir / "moto.log")
    try:
        s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket=settings.bucket)
        landing = LandingBucket(
            bucket=settings.bucket,
            endpoint_url=settings.s3_endpoint,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        yield Stack(settings, s3, landing)
    finally:
        stop(server)


@pytest.fixture
def bucket(stack: Stack, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """A fresh, empty bucket per test (same server)."""
    name = "t-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    stack.s3.create_bucket(Bucket=name)
    landing = LandingBucket(**{**stack.landing.model_dump(), "bucket": name})
    yield Stack(stack.settings, stack.s3, landing)
    paginator = stack.s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=name):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            stack.s3.delete_object(Bucket=name, Key=item["Key"], VersionId=item["VersionId"])
    stack.s3.delete_bucket(Bucket=name)


@pytest.fixture
def warehouse(tmp_path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
