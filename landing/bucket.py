"""The landing bucket as a Dagster resource: moto's S3 server locally, AWS in production."""

from __future__ import annotations

from typing import Any

import dagster as dg


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
        configure S3."""
        from dagster_aws.s3 import S3Resource

        return S3Resource(
            region_name=self.region_name,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            max_attempts=5,
        ).get_client()

    def sqs_client(self) -> Any:
        """SQS client for zones in event mode."""
        return self._boto("sqs")
