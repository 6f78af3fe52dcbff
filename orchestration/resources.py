"""Resources: the landing bucket and the warehouse. Local vs prod is decided here and in
`settings`, never in asset code. Credentials come only from environment variables (EnvVar).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import duckdb
from pydantic import Field

from orchestration.settings import get_settings

_LOCK_WAIT_S = 120.0


class LandingBucket(dg.ConfigurableResource):
    """The S3 bucket upstream systems drop files into (moto's server locally, AWS in prod)."""

    bucket: str
    endpoint_url: str | None = None
    region_name: str = "us-east-1"
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None

    def _boto(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region_name,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            config=Config(retries={"max_attempts": 5, "mode": "adaptive"}),
        )

    def client(self) -> Any:
        """S3 client for the landing bucket."""
        return self._boto("s3")

    def sqs_client(self) -> Any:
        """SQS client for zones in event mode."""
        return self._boto("sqs")


class DuckDBWarehouse(dg.ConfigurableResource):
    """The embedded warehouse: one DuckDB file. DuckDB allows one writing process, so writers
    run in the `warehouse` pool of 1 and connections are opened per unit of work, never held."""

    path: str = Field(description="Path of the DuckDB database file")

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        deadline = time.monotonic() + _LOCK_WAIT_S
        delay = 0.1
        while True:
            try:
                con = duckdb.connect(self.path, read_only=read_only)
                break
            except duckdb.IOException as exc:
                # another process (a reader such as `landfall status`) holds the file lock
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        try:
            yield con
        finally:
            con.close()


def landing_bucket() -> LandingBucket:
    settings = get_settings()
    return LandingBucket(
        bucket=settings.bucket,
        endpoint_url=settings.s3_endpoint,
        aws_access_key_id=dg.EnvVar("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=dg.EnvVar("AWS_SECRET_ACCESS_KEY"),
    )


def warehouse() -> DuckDBWarehouse:
    settings = get_settings()
    if not settings.is_local:
        raise NotImplementedError(
            "raw loading into Snowflake is not wired yet: LANDFALL_ENV=prod serves dbt and "
            "Snowpark against Snowflake; see README 'Production'"
        )
    return DuckDBWarehouse(path=str(settings.warehouse_path))
