"""The Snowflake stand-in of the prod-like stack: fakesnow's server, which speaks Snowflake's
HTTP protocol on 127.0.0.1 over an in-memory DuckDB. It runs from its own venv (`make
stand-in`, infra/fakesnow/) because it needs duckdb >= 2 while the platform pins 1.5.5.

The platform reaches it the way it reaches an account, through environment variables only:
`snowflake_environment()` says which.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from common.settings import PROJECT_ROOT

STAND_IN_PYTHON = PROJECT_ROOT / ".venv-fakesnow" / "bin" / "python"
# not LANDFALL: the ledger schema is "LANDFALL", and DuckDB under fakesnow finds a database and
# a schema of one name ambiguous (a real account does not)
DATABASE = "LANDFALL_DB"


class StandInError(RuntimeError):
    """The stand-in is not installed or did not start."""


def start_fakesnow(port: int, log_path: Path, timeout_s: float = 90) -> subprocess.Popen:
    """Start the server and wait until it accepts connections (a loaded 2-core machine takes
    tens of seconds to import it)."""
    if not STAND_IN_PYTHON.exists():
        raise StandInError(f"{STAND_IN_PYTHON} is missing: run `make stand-in`")
    log = log_path.open("ab")
    proc = subprocess.Popen(
        [str(STAND_IN_PYTHON), "-m", "fakesnow", "-s", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        # the connector otherwise probes cloud metadata endpoints at login
        env={**os.environ, "SNOWFLAKE_DISABLE_PLATFORM_DETECTION": "true"},
        start_new_session=True,
    )
    log.close()
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise StandInError(f"fakesnow exited {proc.returncode}: see {log_path}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise StandInError(f"fakesnow did not listen on {port} in {timeout_s} s") from None
            time.sleep(0.1)


def stop_fakesnow(proc: subprocess.Popen) -> None:
    """Stop the stand-in. Its web server waits for the connector's idle keep-alive connections
    before exiting on SIGTERM (it was still waiting after 30 s); the stand-in keeps nothing worth
    a graceful shutdown, so it gets a short grace before SIGKILL."""
    from devstack.stack import stop

    stop(proc, timeout_s=2)


def snowflake_environment(port: int) -> dict[str, str]:
    """The variables that point the platform's Snowflake code at the stand-in; on a real
    account the same names carry the account's values (and no host/port/protocol)."""
    return {
        "SNOWFLAKE_ACCOUNT": "fakesnow",
        "SNOWFLAKE_USER": "fake",
        "SNOWFLAKE_PASSWORD": "snow",
        "SNOWFLAKE_ROLE": "LANDFALL",
        "SNOWFLAKE_WAREHOUSE": "LANDFALL_WH",
        "SNOWFLAKE_DATABASE": DATABASE,
        "SNOWFLAKE_SCHEMA": "PUBLIC",
        "SNOWFLAKE_HOST": "127.0.0.1",
        "SNOWFLAKE_PORT": str(port),
        "SNOWFLAKE_PROTOCOL": "http",
        "SNOWFLAKE_DISABLE_PLATFORM_DETECTION": "true",
        # the stand-in cannot PUT files to a stage: Sling inserts in batches, dlt goes through
        # its sqlalchemy destination
        "LANDFALL_SLING_USE_BULK": "false",
        "LANDFALL_DLT_SNOWFLAKE_DESTINATION": "sqlalchemy",
    }
