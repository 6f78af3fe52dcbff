"""Freshness from YAML: any asset whose metadata carries `landfall/freshness_max_lag` (set from
`freshness: {max_lag: 26h}` in a zone file or `meta.dagster.freshness` on a dbt model) gets a
Dagster last-update freshness check, evaluated by one sensor per code location. A stale asset
fails its check; check failures reach the notification sink like run failures."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta

import dagster as dg

MAX_LAG_KEY = "landfall/freshness_max_lag"
_LAG = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_max_lag(value: str) -> timedelta:
    """'26h' -> 26 hours; units s, m, h, d."""
    match = _LAG.match(str(value).strip().lower())
    if not match:
        raise ValueError(f"invalid max_lag {value!r}: expected e.g. '90m', '26h' or '2d'")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def freshness_checks(
    assets: Sequence[dg.AssetsDefinition], location: str
) -> tuple[list[dg.AssetChecksDefinition], list[dg.SensorDefinition]]:
    """Checks for every asset that declares a max lag, and the sensor that evaluates them."""
    checks: list[dg.AssetChecksDefinition] = []
    for assets_def in assets:
        for spec in assets_def.specs:
            lag = (spec.metadata or {}).get(MAX_LAG_KEY)
            if lag:
                checks += dg.build_last_update_freshness_checks(
                    assets=[spec.key],
                    lower_bound_delta=parse_max_lag(str(lag)),
                    severity=dg.AssetCheckSeverity.ERROR,
                )
    if not checks:
        return [], []
    sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=checks,
        name=f"{location}_freshness",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    return checks, [sensor]
