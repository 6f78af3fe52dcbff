"""The embedded default stack: moto's S3 server, DuckDB CLI and extensions, child-process env.

Used by the CLI (`landfall dev|demo|setup`) and by tests; never imported by asset code.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import duckdb
import yaml

from common.settings import PROJECT_ROOT, Settings

LOCAL_AWS_KEY = "test"  # moto accepts any credentials; these are not secrets
LOCAL_INSTANCE_YAML = PROJECT_ROOT / "infra" / "dagster.local.yaml"
# events per storage write when Dagster batches them (per-partition events of one output or run)
EVENT_BATCH_SIZE = "1000"


class StackError(RuntimeError):
    """The local stack cannot start as asked; the message says what to do."""


def duckdb_cli_path() -> Path:
    import duckdb_cli  # the registry package ships the real binary

    return Path(duckdb_cli.__file__).parent / "duckdb"


def ensure_duckdb_extensions() -> None:
    """Install json and httpfs from their registry packages so nothing downloads at run time.

    Sling's DuckDB target runs `INSTALL json/httpfs`; with these in ~/.duckdb it stays offline.
    """
    import duckdb_extension_httpfs
    import duckdb_extension_json

    con = duckdb.connect()
    try:
        for module in (duckdb_extension_json, duckdb_extension_httpfs):
            ext = next(Path(module.__file__).parent.glob("extensions/*/*.duckdb_extension"))
            con.install_extension(str(ext))
    finally:
        con.close()


def local_environment(settings: Settings) -> dict[str, str]:
    """Environment variables every local process (daemon, runs, dbt, Sling) needs."""
    env = {
        "LANDFALL_ENV": settings.env,
        "LANDFALL_STATE_DIR": str(settings.state_dir),
        "LANDFALL_BUCKET": settings.bucket,
        "LANDFALL_WAREHOUSE_PATH": str(settings.warehouse_path),
        "LANDFALL_UI_URL": settings.ui_url,
        "DAGSTER_HOME": str(settings.state_dir / "dagster_home"),
        "SLING_HOME_DIR": str(settings.state_dir / "sling"),
        "DBT_PROFILES_DIR": str(PROJECT_ROOT / "transforms"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
        "RUNTIME__DLTHUB_TELEMETRY": "false",
        "DAGSTER_DISABLE_TELEMETRY": "1",
        # Dagster writes the per-partition events of a step output and of a run's creation as
        # one batch (a landing run's hundreds of objects): see infra/dagster.local.yaml
        "DAGSTER_EVENT_BATCH_SIZE": EVENT_BATCH_SIZE,
        # the venv's tools (dbt, sling, dagster) for every child process, activated or not
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    if importlib.util.find_spec("duckdb_cli"):  # Sling's DuckDB CLI (the ingestion group)
        env["DUCKDB_PATH"] = str(duckdb_cli_path())
    if settings.s3_endpoint:
        env["LANDFALL_S3_ENDPOINT"] = settings.s3_endpoint
    if settings.is_local:
        env.setdefault("AWS_ACCESS_KEY_ID", os.environ.get("AWS_ACCESS_KEY_ID", LOCAL_AWS_KEY))
        env.setdefault(
            "AWS_SECRET_ACCESS_KEY", os.environ.get("AWS_SECRET_ACCESS_KEY", LOCAL_AWS_KEY)
        )
        env.setdefault("AWS_DEFAULT_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    return env


def landing_s3_client(settings: Settings, **config: Any) -> Any:
    """A boto3 S3 client for the landing bucket from a shell: locally moto's endpoint and its
    credentials (the shell may have none), in prod the default AWS credential chain. `config`:
    botocore Config options (timeouts, retries)."""
    import boto3
    from botocore.config import Config

    env = local_environment(settings) if settings.is_local else {}
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
        config=Config(**config) if config else None,
    )


def write_local_instance(home: Path) -> None:
    """$DAGSTER_HOME/dagster.yaml for the embedded default: infra/dagster.local.yaml, with
    Dagster's SQLite storage in `home` replaced by the one that writes an event batch in one
    transaction (common/dagster_private.BatchedSqliteStorage: a 500-object landing run spent
    ~25 s committing its planned and materialized partition events one by one). Same files,
    same layout; the path is written out because an instance is also opened from outside its
    $DAGSTER_HOME (landfall status, benchmarks)."""
    storage = {
        "storage": {
            "custom": {
                "module": "common.dagster_private",
                "class": "BatchedSqliteStorage",
                "config": {"base_dir": str(home.resolve())},
            }
        }
    }
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(
        LOCAL_INSTANCE_YAML.read_text() + "\n" + yaml.safe_dump(storage, sort_keys=False)
    )


def apply_local_environment(settings: Settings) -> dict[str, str]:
    """Export the local environment into this process and prepare its folders."""
    env = local_environment(settings)
    os.environ.update(env)
    for folder in ("dagster_home", "sling"):
        (settings.state_dir / folder).mkdir(parents=True, exist_ok=True)
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout_s: float, proc: subprocess.Popen | None = None) -> None:
    """Poll until `url` answers; fail fast if the process serving it died."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process serving {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception as exc:  # noqa: BLE001 - any failure means "not up yet"
            last_error = exc
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s}s: {last_error}")


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_s3_server(
    port: int, log_path: Path | None = None, recording: Path | None = None
) -> subprocess.Popen:
    """Start moto's S3/SQS server on 127.0.0.1:port and wait until it answers. With a
    `recording`, its state is kept in that file and restored on the next start
    (devstack/s3_server.py); without, it lives in memory only."""
    if port_in_use(port):
        raise StackError(
            f"port {port} is already in use (another local stack? `landfall down` stops one; "
            "LANDFALL_S3_PORT picks another port)"
        )
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    if recording is None:
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    else:
        command = [sys.executable, "-m", "devstack.s3_server", "--port", str(port)]
        command += ["--recording", str(recording)]
    proc = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=os.environ.copy(),
        start_new_session=True,  # its own process group: stopped with everything it started
    )
    try:  # replaying a long recording takes a while before the port answers
        wait_for_http(f"http://127.0.0.1:{port}/moto-api/", timeout_s=120, proc=proc)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        raise
    return proc
