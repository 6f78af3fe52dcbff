"""Resources per environment: local vs prod is decided here and in `common.settings`, never
in asset code. Credentials come only from environment variables (EnvVar).
"""

from __future__ import annotations

import dagster as dg

from common.settings import get_settings
from landing.bucket import LandingBucket
from landing.warehouse import DuckDBWarehouse


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
