"""Freshness of the raw tables (the dbt sources) as `landfall status` prints it: the state
Dagster's daemon last recorded for each table's FreshnessPolicy, and its last load.

The `dbt source freshness` runner that lived here (an asset check per raw table running dbt
against max(_landfall_loaded_at)) is gone: orchestration/freshness.py says why. The policy is the
one freshness verdict per asset; this module only reads it back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

from common.dagster_private import get_current_timestamp


@dataclass(frozen=True)
class LatestFreshness:
    """One raw table's freshness, for `landfall status`."""

    asset: str
    state: str  # pass / warn / fail / unknown (never loaded) / not evaluated (daemon not run yet)
    lag: str  # time since the last load, e.g. 3h05m
    max_loaded_at: str  # the last load (latest materialization of any partition), UTC
    description: str


def _lag_text(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m"


def latest_freshness(
    instance: dg.DagsterInstance, asset_keys: Sequence[dg.AssetKey]
) -> list[LatestFreshness]:
    states = instance.get_freshness_state_records(list(asset_keys))
    rows = []
    for key in asset_keys:
        record = states.get(key)
        state = record.freshness_state.value.lower() if record else "not evaluated"
        if state == "not_applicable":
            state = "no policy"
        last = instance.get_latest_materialization_event(key)
        lag = _lag_text(get_current_timestamp() - last.timestamp) if last else ""
        loaded = (
            datetime.fromtimestamp(last.timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
            if last
            else ""
        )
        since = (
            f" since {record.updated_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if record else ""
        )
        rows.append(
            LatestFreshness(
                asset="/".join(key.path),
                state=state,
                lag=lag,
                max_loaded_at=loaded,
                description=f"{state}{since}",
            )
        )
    return rows
