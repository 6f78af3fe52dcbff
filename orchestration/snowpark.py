"""The Snowpark session resource: the one switch between a Snowpark session on fakesnow over the
DuckDB warehouse (embedded default, ml/local_snowflake.py) and a real Snowflake session (prod,
env-only config)."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from common.settings import get_settings, snowflake_endpoint
from orchestration.snowflake_credentials import snowflake_credentials


class SnowparkResource(dg.ConfigurableResource):
    """`local=True`: tables in the DuckDB file at `duckdb_path`, Snowpark's SQL run there by
    fakesnow; the file is held for the step (`open()`) and released after.
    Otherwise a Snowflake session from the connection fields (all from EnvVar)."""

    local: bool = True
    duckdb_path: str | None = None
    account: str | None = None
    user: str | None = None
    password: str | None = None
    private_key_file: str | None = None
    role: str | None = None
    warehouse: str | None = None
    database: str | None = None
    schema_: str | None = None
    # Unset on an account; a stand-in (fakesnow's server) is reached at host:port over protocol.
    host: str | None = None
    port: int | None = None
    protocol: str | None = None
    # Bounded: the connector otherwise retries a failing call for minutes.
    login_timeout: int = 60
    network_timeout: int = 300

    @contextmanager
    def open(self) -> Iterator["SnowparkWarehouse"]:  # noqa: F821 - ml imports lazily
        from ml.warehouse_io import SnowparkWarehouse

        if self.local:
            with SnowparkWarehouse.local(self.duckdb_path) as wh:
                yield wh
            return
        from snowflake.snowpark import Session

        options = {
            k: v
            for k, v in {
                "account": self.account,
                "user": self.user,
                "password": self.password,
                "private_key_file": self.private_key_file,
                "role": self.role,
                "warehouse": self.warehouse,
                "database": self.database,
                "schema": self.schema_,
                "host": self.host,
                "port": self.port,
                "protocol": self.protocol,
                "login_timeout": self.login_timeout,
                "network_timeout": self.network_timeout,
            }.items()
            if v
        }
        session = Session.builder.configs(options).create()
        try:
            yield SnowparkWarehouse.snowflake(session)
        finally:
            _close(session)


def _close(session: "Session") -> None:  # noqa: F821 - snowpark imports lazily
    """End the session; a failed close is a warning, not a failed step: the step's writes are
    committed, and the server ends the session at its idle timeout (the fakesnow stand-in
    lacks the SYSTEM$CANCEL_ALL_QUERIES that Snowpark's close sends first)."""
    from snowflake.snowpark.exceptions import SnowparkSessionException

    try:
        session.close()
    except SnowparkSessionException as exc:
        dg.get_dagster_logger().warning(f"the Snowpark session did not close cleanly: {exc}")


def snowpark_resource() -> SnowparkResource:
    settings = get_settings()
    if settings.is_local:
        return SnowparkResource(local=True, duckdb_path=str(settings.warehouse_path))
    endpoint = snowflake_endpoint()
    return SnowparkResource(
        local=False,
        host=endpoint.host,
        port=endpoint.port,
        protocol=endpoint.protocol,
        **snowflake_credentials(),
    )
