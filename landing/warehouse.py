"""The warehouse the landing path writes to. Locally one DuckDB file."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb
from pydantic import Field

_LOCK_WAIT_S = 120.0


class DuckDBWarehouse(dg.ConfigurableResource):
    """The embedded warehouse: one DuckDB file. DuckDB allows one writing process, so writers
    run in the `warehouse` pool of 1 and connections are opened per unit of work, never held."""

    path: str = Field(description="Path of the DuckDB database file")

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        deadline = time.monotonic() + _LOCK_WAIT_S
        delay = 0.1
        while True:
            try:
                con = duckdb.connect(self.path, read_only=read_only)
                break
            except duckdb.IOException as exc:
                # another process (a reader such as `landfall status`) holds the file lock
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        try:
            yield con
        finally:
            con.close()
