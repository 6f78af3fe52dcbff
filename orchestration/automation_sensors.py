"""The automation sensors of a code location: running by default, so a landed file cascades
without anyone turning anything on.

Our `on_upstream_change` is a Python condition (`orchestration.upstream_change`), so the
sensors evaluate in the code server (`use_user_code_server`), where Dagster allows at most 500
assets and checks per sensor: a location with more gets one sensor per slice of its assets.
A cascade across two slices takes one more tick (the child sees its parent's new data
instead of joining the parent's run)."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable, Sequence

import dagster as dg

from common.dagster_private import MAX_ENTITIES


def _slices(entities: Counter[dg.AssetKey], limit: int) -> list[list[dg.AssetKey]]:
    """Assets in key order (the layer first: raw, staging, ... stay together) cut into slices
    whose assets plus their checks stay within `limit`."""
    slices: list[list[dg.AssetKey]] = [[]]
    size = 0
    for key in sorted(entities, key=lambda k: k.path):
        if slices[-1] and size + entities[key] > limit:
            slices.append([])
            size = 0
        slices[-1].append(key)
        size += entities[key]
    return slices


def automation_sensors(
    location: str,
    assets: Iterable[dg.AssetsDefinition],
    checks: Sequence[dg.AssetChecksDefinition] = (),
    interval_seconds: int = 10,
    limit: int = MAX_ENTITIES,
) -> list[dg.AutomationConditionSensorDefinition]:
    entities: Counter[dg.AssetKey] = Counter()
    for definition in assets:
        for key in definition.keys:
            entities[key] += 1
        for check_key in definition.check_keys:
            entities[check_key.asset_key] += 1
    for definition in checks:
        for check_key in definition.check_keys:
            # checks on another location's assets (dbt source freshness on raw tables) are
            # not this location's to evaluate: they have their own sensor
            if check_key.asset_key in entities:
                entities[check_key.asset_key] += 1
    slices = _slices(entities, limit)
    with warnings.catch_warnings():
        # `use_user_code_server` is beta in Dagster 1.13; chosen on purpose (see above)
        warnings.simplefilter("ignore", dg.BetaWarning)
        return [
            dg.AutomationConditionSensorDefinition(
                f"{location}_automation" + (f"_{i + 1}" if len(slices) > 1 else ""),
                target=dg.AssetSelection.assets(*keys),
                default_status=dg.DefaultSensorStatus.RUNNING,
                minimum_interval_seconds=interval_seconds,
                use_user_code_server=True,
                description=f"Evaluates the automation conditions of the {location} assets"
                + (f" (slice {i + 1} of {len(slices)})." if len(slices) > 1 else "."),
            )
            for i, keys in enumerate(slices)
        ]
