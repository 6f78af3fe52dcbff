"""Resources per environment: local vs prod is decided here and in `common.settings`, never
in asset code. Credentials come only from environment variables (EnvVar).
"""

from __future__ import annotations

from typing import Literal

import dagster as dg

from common.settings import get_settings, snowflake_endpoint
from landing.bucket import LandingBucket
from landing.warehouse import DuckDBWarehouse, LandingWarehouse
from orchestration.snowflake_credentials import snowflake_credentials


def landing_bucket() -> LandingBucket:
    settings = get_settings()
    return LandingBucket(
        bucket=settings.bucket,
        endpoint_url=settings.s3_endpoint,
        aws_access_key_id=dg.EnvVar("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=dg.EnvVar("AWS_SECRET_ACCESS_KEY"),
    )


def snowflake_resource() -> dg.ConfigurableResource:
    """dagster-snowflake's resource from the SNOWFLAKE_* variables (qmark binds: the landing
    SQL is written with `?` placeholders for DuckDB and Snowflake alike)."""
    from dagster_snowflake import SnowflakeResource

    endpoint = snowflake_endpoint()
    connect_args = {
        k: v
        for k, v in {
            "host": endpoint.host,
            "port": endpoint.port,
            "protocol": endpoint.protocol,
        }.items()
        if v
    }
    return SnowflakeResource(
        **snowflake_credentials(),
        paramstyle="qmark",
        # bounded: a connector otherwise retries a failing call for minutes
        login_timeout=60,
        network_timeout=300,
        additional_snowflake_connection_args=connect_args or None,
    )


def warehouse_kind() -> Literal["duckdb", "snowflake"]:
    """Which warehouse the raw tables are in: its type rules apply to their schema checks."""
    return "duckdb" if get_settings().is_local else "snowflake"


def warehouse() -> LandingWarehouse:
    settings = get_settings()
    if settings.is_local:
        return DuckDBWarehouse(path=str(settings.warehouse_path))
    from landing.snowflake_warehouse import SnowflakeWarehouse

    endpoint = snowflake_endpoint()
    return SnowflakeWarehouse(
        snowflake=snowflake_resource(),
        sling_use_bulk=endpoint.sling_use_bulk,
        dlt_destination=endpoint.dlt_destination,
    )
