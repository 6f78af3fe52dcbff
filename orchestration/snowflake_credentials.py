"""The Snowflake account's credentials, named once: every Snowflake resource (the landing
warehouse, the Snowpark session) takes them from these environment variables via EnvVar."""

from __future__ import annotations

import dagster as dg


def snowflake_credentials() -> dict[str, dg.EnvVar]:
    return {
        field: dg.EnvVar(f"SNOWFLAKE_{field.upper()}")
        for field in ("account", "user", "password", "role", "warehouse", "database")
    }
