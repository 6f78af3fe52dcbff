"""The landing bucket as a Dagster resource: moto's S3 server locally, AWS in production."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import dagster as dg

# One S3 (and SQS) client per process and configuration. Building one (dagster-aws's S3Resource:
# a boto3 session, its resource and client) loads botocore's endpoint rules and service models
# again, ~0.35 s of CPU here: every landing sensor tick paid it, every 5 s per zone, in the code
# server. boto3 clients are thread-safe, and credentials from the environment or a role stay
# refreshable inside one.
_CLIENTS: dict[tuple[str | None, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()


class LandingBucket(dg.ConfigurableResource):
    """The S3 bucket upstream systems drop files into (moto's server locally, AWS in prod)."""

    bucket: str
    endpoint_url: str | None = None
    region_name: str = "us-east-1"
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None

    def _boto(self, service: str) -> Any:  # SQS: dagster-aws has no SQS resource
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
        """S3 client for the landing bucket: dagster-aws's S3 resource builds it (its
        retries, endpoint and credentials), so the bucket is configured as Dagster users
        configure S3; built once per process and configuration (`_CLIENTS`)."""
        from dagster_aws.s3 import S3Resource

        return _shared(
            ("s3", *self._identity()),
            lambda: S3Resource(
                region_name=self.region_name,
                endpoint_url=self.endpoint_url,
                aws_access_key_id=self.aws_access_key_id,
                aws_secret_access_key=self.aws_secret_access_key,
                max_attempts=5,
            ).get_client(),
        )

    def sqs_client(self) -> Any:
        """SQS client for zones in event mode (once per process, as `client()`)."""
        return _shared(("sqs", *self._identity()), lambda: self._boto("sqs"))

    def _identity(self) -> tuple[str | None, ...]:
        return (
            self.region_name,
            self.endpoint_url,
            self.aws_access_key_id,
            self.aws_secret_access_key,
        )


def _shared(key: tuple[str | None, ...], build: Callable[[], Any]) -> Any:
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS[key] = build()
        return _CLIENTS[key]


def forget_clients() -> None:
    """Drop the cached clients: the next `client()` builds a new one (a benchmark timing
    what a fresh run process pays)."""
    with _CLIENTS_LOCK:
        _CLIENTS.clear()
