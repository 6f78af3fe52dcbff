"""The one place environment variables are read: the environment switch (local vs prod) and
every other setting, each read lazily, when asked for.

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


# --- Settings read where they are used (each read when called, never at import) -------------


@dataclass(frozen=True)
class DemoPostgres:
    """The PostgreSQL database `make demo-prod` keeps its Dagster instance in (it is dropped and
    created again by each demo, so it has its own name, never a deployment's DAGSTER_PG_DB)."""

    host: str
    port: int
    user: str
    password: str
    database: str


def demo_postgres() -> DemoPostgres:
    """`LANDFALL_DEMO_PG_HOST/_PORT/_USER/_PASSWORD/_DB`; defaults: the local server
    127.0.0.1:5432, user postgres, no password, database landfall_demo_prod."""
    env = os.environ
    return DemoPostgres(
        host=env.get("LANDFALL_DEMO_PG_HOST") or "127.0.0.1",
        port=_positive_int("LANDFALL_DEMO_PG_PORT") or 5432,
        user=env.get("LANDFALL_DEMO_PG_USER") or "postgres",
        password=env.get("LANDFALL_DEMO_PG_PASSWORD") or "",
        database=env.get("LANDFALL_DEMO_PG_DB") or "landfall_demo_prod",
    )


def dagster_home(default: Path) -> Path:
    """`DAGSTER_HOME` when set (the instance the CLI's commands talk to), else `default`."""
    return Path(os.environ.get("DAGSTER_HOME") or default)


def ui_port() -> int:
    """`LANDFALL_UI_PORT`: where `landfall dev` serves the UI (default 3000)."""
    return _positive_int("LANDFALL_UI_PORT") or 3000


def dbt_target() -> str:
    """`LANDFALL_DBT_TARGET`: the profiles.yml target, by default the environment's."""
    return os.environ.get("LANDFALL_DBT_TARGET") or (LOCAL if get_settings().is_local else PROD)


LANDING_RUNS = ("per_tick", "per_file")


def landing_runs() -> str | None:
    """`LANDFALL_LANDING_RUNS` (per_tick or per_file): overrides every zone's sensor.runs."""
    value = os.environ.get("LANDFALL_LANDING_RUNS", "").strip()
    if value and value not in LANDING_RUNS:
        raise ValueError(f"$LANDFALL_LANDING_RUNS={value!r}: expected per_tick or per_file")
    return value or None


def load_workers() -> int | None:
    """`LANDFALL_LOAD_WORKERS`: objects of one ingestion run staged at once (None: not set)."""
    return _positive_int("LANDFALL_LOAD_WORKERS")


def retention_keep() -> int | None:
    """`LANDFALL_RETENTION_KEEP`: overrides every zone's retention.keep_partitions; read on each
    retention tick, so lowering it needs no reload (None: not set)."""
    return _positive_int("LANDFALL_RETENTION_KEEP")


def retention_interval_seconds() -> int | None:
    """`LANDFALL_RETENTION_INTERVAL_SECONDS`: overrides every zone's retention.interval_seconds
    (at least 30, as in the zone file) when the definitions load (None: not set)."""
    value = _positive_int("LANDFALL_RETENTION_INTERVAL_SECONDS")
    if value is not None and value < 30:
        raise ValueError(f"$LANDFALL_RETENTION_INTERVAL_SECONDS={value}: at least 30")
    return value


def variable(name: str) -> str | None:
    """A variable a configuration file names (e.g. a zone's `sensor.queue_url_env`)."""
    return os.environ.get(name) or None


@dataclass(frozen=True)
class NotificationSettings:
    """Where notifications go: a webhook, else SMTP, else the local JSONL file."""

    webhook_url: str | None
    smtp_host: str | None
    smtp_port: int
    smtp_from: str
    smtp_to: str | None
    smtp_user: str | None
    smtp_password: str | None


def notification_settings() -> NotificationSettings:
    """`LANDFALL_NOTIFY_WEBHOOK_URL`, or `LANDFALL_NOTIFY_SMTP_HOST` with `_PORT`, `_FROM`, `_TO`,
    `_USER`, `_PASSWORD` (secrets stay in the environment; read at each delivery)."""
    env = os.environ
    smtp_host = env.get("LANDFALL_NOTIFY_SMTP_HOST") or None
    settings = NotificationSettings(
        webhook_url=env.get("LANDFALL_NOTIFY_WEBHOOK_URL") or None,
        smtp_host=smtp_host,
        smtp_port=_positive_int("LANDFALL_NOTIFY_SMTP_PORT") or 587,
        smtp_from=env.get("LANDFALL_NOTIFY_SMTP_FROM") or "landfall@localhost",
        smtp_to=env.get("LANDFALL_NOTIFY_SMTP_TO") or None,
        smtp_user=env.get("LANDFALL_NOTIFY_SMTP_USER") or None,
        smtp_password=env.get("LANDFALL_NOTIFY_SMTP_PASSWORD"),
    )
    if smtp_host and not settings.smtp_to:
        raise ValueError("LANDFALL_NOTIFY_SMTP_HOST is set but LANDFALL_NOTIFY_SMTP_TO is not")
    if settings.smtp_user and settings.smtp_password is None:
        raise ValueError(
            "LANDFALL_NOTIFY_SMTP_USER is set but LANDFALL_NOTIFY_SMTP_PASSWORD is not"
        )
    return settings


def _positive_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return int(value)
