"""Freshness, declared in YAML and kept by Dagster: one `FreshnessPolicy` per asset that declares
`freshness: {max_lag: 26h, warn_after: 20h, start: 2026-12-01}` (in its zone file, or as
`meta.dagster.freshness` on a dbt model; schema: landing.zones.FreshnessSpec).

Dagster's daemon evaluates the policies (PASS / WARN / FAIL against the asset's latest
materialization of any partition; UNKNOWN while it has none) and shows them in the UI. Alerting
on them is a Dagster+ feature, so each location also gets a notification sensor
(sensors.notifications.freshness_failure_sensor) that sends a FAIL, or a first landing overdue,
to the same sink as failed runs and checks, never before the asset's grace has ended.

This is the only freshness mechanism. The raw tables used to carry a `dbt source freshness`
check as well (max(_landfall_loaded_at) against the warehouse clock): every raw table is
materialized by the zone's step in the same transaction that writes its rows, so the
materialization time the policy reads is the load time dbt read; dbt's check could only add
something for tables loaded outside Dagster, and Landfall has none. It cost a run per load and a
second verdict on the same question.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dagster as dg
from pydantic import ValidationError

from landing.zones import FreshnessSpec, ZoneSpec
from sensors.notifications import FreshnessGrace, freshness_failure_sensor

# The zone's declared max lag as asset metadata, written by the zone component for the UI; the
# policy itself is built from the zone spec.
MAX_LAG_KEY = "landfall/freshness_max_lag"


def freshness_policy(spec: FreshnessSpec) -> dg.FreshnessPolicy:
    return dg.FreshnessPolicy.time_window(fail_window=spec.fail_lag, warn_window=spec.warn_lag)


def zone_freshness(zones: Iterable[ZoneSpec]) -> dict[dg.AssetKey, FreshnessSpec]:
    """Every raw table of a zone that declares freshness (child tables load with their parent)."""
    return {
        dg.AssetKey(table_key): zone.freshness
        for zone in zones
        if zone.freshness
        for table_key in zone.table_keys
    }


def dbt_freshness(manifest: Mapping[str, Any], translator: Any) -> dict[dg.AssetKey, FreshnessSpec]:
    """dbt models with `meta.dagster.freshness`; an invalid one fails naming file and asset."""
    declared = {}
    for props in manifest.get("nodes", {}).values():
        if props.get("resource_type") != "model":
            continue
        meta = (props.get("config") or {}).get("meta") or props.get("meta") or {}
        freshness = (meta.get("dagster") or {}).get("freshness")
        if not freshness:
            continue
        key = translator.get_asset_key(props)
        try:
            declared[key] = FreshnessSpec.model_validate(freshness)
        except ValidationError as exc:
            reasons = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'freshness'}: {e['msg']}"
                for e in exc.errors()
            )
            source = props.get("original_file_path", "transforms")
            raise ValueError(
                f"{source}: asset {key.to_user_string()}: meta.dagster.freshness: {reasons}"
            ) from None
    return declared


def with_freshness_policies(
    assets: Sequence[dg.AssetsDefinition], declared: Mapping[dg.AssetKey, FreshnessSpec]
) -> list[dg.AssetsDefinition]:
    """The assets, each declared one carrying its policy: the one place policies are applied."""

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        if spec.key not in declared:
            return spec
        return spec.replace_attributes(freshness_policy=freshness_policy(declared[spec.key]))

    return [a for a in dg.map_asset_specs(apply, assets) if isinstance(a, dg.AssetsDefinition)]


def freshness_notifications(
    location: str, declared: Mapping[dg.AssetKey, FreshnessSpec]
) -> list[dg.SensorDefinition]:
    """The location's freshness notification sensor, if any of its assets declares freshness."""
    if not declared:
        return []
    graces = {key: FreshnessGrace(spec.fail_lag, spec.start) for key, spec in declared.items()}
    return [freshness_failure_sensor(f"notify_on_{location}_freshness_failure", graces)]
