"""Faults injected at the warehouse writes of the landing path: an object is written by the
set-wise merge of its run's shared stage, by its own merge out of that stage (the fallback), or
staged and merged alone (one object, dlt, a failed batch). A test breaks an object in all three."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from landing import ingest as landing_ingest
from landing import raw_load


def fail_warehouse_writes(
    monkeypatch: pytest.MonkeyPatch,
    on_object: Callable[[str], None],
    batch_fails: Callable[[list[str]], bool],
    error: str,
) -> None:
    """`on_object(key)` runs before each write of one object (it records or raises); the
    set-wise merge raises OSError(`error`) when `batch_fails(its keys)`."""
    real_batch = raw_load.merge_batch
    real_merge, real_load = landing_ingest._merge_from_batch, landing_ingest._load

    def batch(con, zone, staged, items, loaded_at):
        if batch_fails([i.obj.key for i in items]):
            raise OSError(error)
        return real_batch(con, zone, staged, items, loaded_at)

    def merge(con, zone, staging, fetched, loaded_at):
        on_object(fetched.obj.key)
        return real_merge(con, zone, staging, fetched, loaded_at)

    def load(log, zone, obj, local_copy, wh, lock, records):
        on_object(obj.key)
        return real_load(log, zone, obj, local_copy, wh, lock, records)

    monkeypatch.setattr(raw_load, "merge_batch", batch)
    monkeypatch.setattr(landing_ingest, "_merge_from_batch", merge)
    monkeypatch.setattr(landing_ingest, "_load", load)
