"""The environment switch: one place that decides local (embedded) vs prod, read lazily.

Everything else asks this module; nothing reads ``os.environ`` at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCAL, PROD = "local", "prod"


@dataclass(frozen=True)
class Settings:
    env: str
    state_dir: Path
    bucket: str
    s3_endpoint: str | None
    warehouse_path: Path
    ui_url: str

    @property
    def is_local(self) -> bool:
        return self.env == LOCAL


def get_settings() -> Settings:
    """Settings from environment variables; defaults describe the embedded local stack."""
    env = os.environ.get("LANDFALL_ENV", LOCAL).lower()
    if env not in (LOCAL, PROD):
        raise ValueError(f"LANDFALL_ENV must be '{LOCAL}' or '{PROD}', got {env!r}")
    state_dir = Path(os.environ.get("LANDFALL_STATE_DIR", PROJECT_ROOT / ".local")).resolve()
    s3_port = os.environ.get("LANDFALL_S3_PORT", "4566")
    default_endpoint = f"http://127.0.0.1:{s3_port}" if env == LOCAL else None
    return Settings(
        env=env,
        state_dir=state_dir,
        bucket=os.environ.get("LANDFALL_BUCKET", "landfall-landing"),
        s3_endpoint=os.environ.get("LANDFALL_S3_ENDPOINT", default_endpoint),
        warehouse_path=Path(
            os.environ.get("LANDFALL_WAREHOUSE_PATH", state_dir / "warehouse.duckdb")
        ).resolve(),
        ui_url=os.environ.get("LANDFALL_UI_URL", "http://127.0.0.1:3000"),
    )


@dataclass(frozen=True)
class SnowflakeEndpoint:
    """Where the Snowflake connector, Sling and dbt reach the account. Empty host: the account's
    own `<account>.snowflakecomputing.com`. A host/port/protocol (SNOWFLAKE_HOST, SNOWFLAKE_PORT,
    SNOWFLAKE_PROTOCOL) reaches a stand-in such as fakesnow's server; it cannot PUT files to a
    stage, so LANDFALL_SLING_USE_BULK=false makes Sling insert in batches instead."""

    host: str | None
    port: int | None
    protocol: str | None
    sling_use_bulk: bool
    # "snowflake": dlt's Snowflake destination (stages files; an account). "sqlalchemy": plain
    # INSERTs through snowflake-sqlalchemy, for a stand-in that cannot stage files.
    dlt_destination: str


def snowflake_endpoint() -> SnowflakeEndpoint:
    port = os.environ.get("SNOWFLAKE_PORT")
    use_bulk = os.environ.get("LANDFALL_SLING_USE_BULK", "true").strip().lower()
    if use_bulk not in ("true", "false"):
        raise ValueError(f"LANDFALL_SLING_USE_BULK must be true or false, got {use_bulk!r}")
    dlt_destination = os.environ.get("LANDFALL_DLT_SNOWFLAKE_DESTINATION", "snowflake")
    if dlt_destination not in ("snowflake", "sqlalchemy"):
        raise ValueError(
            "LANDFALL_DLT_SNOWFLAKE_DESTINATION must be snowflake or sqlalchemy, got "
            f"{dlt_destination!r}"
        )
    return SnowflakeEndpoint(
        dlt_destination=dlt_destination,
        host=os.environ.get("SNOWFLAKE_HOST") or None,
        port=int(port) if port else None,
        protocol=os.environ.get("SNOWFLAKE_PROTOCOL") or None,
        sling_use_bulk=use_bulk == "true",
    )
