"""The prod-like stack differs from a deployment only in endpoints, credentials and the two
loading settings the stand-in needs: an account's environment (no SNOWFLAKE_HOST) renders the
production paths — Sling's bulk load to <account>.snowflakecomputing.com, dlt's Snowflake
destination, dbt and Snowpark without host/port/protocol — and the stand-in's environment
changes exactly those. The end-to-end run is tests/test_demo_prod.py (slow)."""

from __future__ import annotations

import dagster as dg
import pytest

from common.settings import demo_postgres, get_settings
from devstack import prod_like, snowflake_stand_in
from orchestration.resources import warehouse
from orchestration.snowpark import snowpark_resource

ACCOUNT = {
    "LANDFALL_ENV": "prod",
    "SNOWFLAKE_ACCOUNT": "xy12345.eu-central-1",
    "SNOWFLAKE_USER": "LANDFALL_SVC",
    "SNOWFLAKE_PASSWORD": "placeholder",
    "SNOWFLAKE_ROLE": "LANDFALL",
    "SNOWFLAKE_WAREHOUSE": "LANDFALL_WH",
    "SNOWFLAKE_DATABASE": "LANDFALL_DB",
    "SNOWFLAKE_SCHEMA": "PUBLIC",
}
STAND_IN_ONLY = {
    "SNOWFLAKE_HOST",
    "SNOWFLAKE_PORT",
    "SNOWFLAKE_PROTOCOL",
    "SNOWFLAKE_DISABLE_PLATFORM_DETECTION",
    "LANDFALL_SLING_USE_BULK",
    "LANDFALL_DLT_SNOWFLAKE_DESTINATION",
}


def _resolved(env: dict[str, str], monkeypatch: pytest.MonkeyPatch):
    for name in STAND_IN_ONLY:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with dg.build_resources({"warehouse": warehouse(), "snowpark": snowpark_resource()}) as res:
        return res.warehouse, res.snowpark


def test_stand_in_changes_only_endpoints_credentials_and_loading_settings() -> None:
    stand_in = snowflake_stand_in.snowflake_environment(4242)
    assert set(stand_in) - set(ACCOUNT) == STAND_IN_ONLY
    assert stand_in["LANDFALL_SLING_USE_BULK"] == "false"
    assert stand_in["LANDFALL_DLT_SNOWFLAKE_DESTINATION"] == "sqlalchemy"


def test_an_account_gets_the_bulk_and_native_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    wh, snowpark = _resolved(ACCOUNT, monkeypatch)
    assert wh.sling_use_bulk is True
    assert wh.dlt_destination == "snowflake"
    connection = wh.sling_connection()
    # the dict form: Sling builds <account>.snowflakecomputing.com from the account
    assert isinstance(connection, dict) and connection["account"] == ACCOUNT["SNOWFLAKE_ACCOUNT"]
    assert "host" not in connection
    assert not wh.snowflake.additional_snowflake_connection_args
    assert (snowpark.host, snowpark.port, snowpark.protocol) == (None, None, None)


def test_the_stand_in_gets_its_endpoint_and_row_inserts(monkeypatch: pytest.MonkeyPatch) -> None:
    wh, snowpark = _resolved(ACCOUNT | snowflake_stand_in.snowflake_environment(4242), monkeypatch)
    assert wh.sling_use_bulk is False
    assert wh.dlt_destination == "sqlalchemy"
    assert wh.sling_connection().startswith("snowflake://fake:snow@127.0.0.1:4242/LANDFALL_DB?")
    assert (snowpark.host, snowpark.port, snowpark.protocol) == ("127.0.0.1", 4242, "http")
    assert snowpark.login_timeout and snowpark.network_timeout  # a gap fails, it does not hang


def test_prod_environment_points_every_process_at_the_stand_ins(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("LANDFALL_ENV", "prod")
    monkeypatch.setenv("LANDFALL_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LANDFALL_DEMO_PG_DB", "landfall_demo_prod_x")
    env = prod_like.prod_environment(get_settings(), 1111, 2222, demo_postgres())
    assert env["LANDFALL_ENV"] == "prod"
    assert env["LANDFALL_S3_ENDPOINT"] == "http://127.0.0.1:1111"
    assert env["SNOWFLAKE_PORT"] == "2222"
    assert env["DAGSTER_PG_DB"] == "landfall_demo_prod_x"
    assert env["DAGSTER_HOME"] == str(tmp_path / "dagster_home")
    assert "LANDFALL_WAREHOUSE_PATH" not in env  # no DuckDB warehouse on the prod path
