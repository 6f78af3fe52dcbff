"""The automation vocabulary: the one mapping from our condition names to Dagster conditions.

Every asset kind (landing zone, dbt model, Snowpark model) declares

    meta:
      dagster:
        automation_condition: on_upstream_change  # or on_cron_no_deps, on_cron_with_deps,
        #   manual_only
        automation_condition_config: {cron_schedule: "@daily", cron_timezone: utc}

and every factory or translator calls `automation_condition_from_meta`, nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import dagster as dg

from orchestration.upstream_change import UpstreamChangeCondition

ON_UPSTREAM_CHANGE = "on_upstream_change"
ON_CRON_NO_DEPS = "on_cron_no_deps"
ON_CRON_WITH_DEPS = "on_cron_with_deps"
MANUAL_ONLY = "manual_only"
CONDITION_NAMES = (ON_UPSTREAM_CHANGE, ON_CRON_NO_DEPS, ON_CRON_WITH_DEPS, MANUAL_ONLY)
CRON_CONDITIONS = (ON_CRON_NO_DEPS, ON_CRON_WITH_DEPS)
DEFAULT_CONDITION = ON_UPSTREAM_CHANGE


class AutomationConfigError(ValueError):
    """An asset's automation metadata is invalid; the message names the asset and the file."""


def _fail(asset: str, source: str, reason: str) -> AutomationConfigError:
    return AutomationConfigError(f"{source}: asset {asset}: {reason}")


def _normalise_timezone(name: str, asset: str, source: str) -> str:
    if name.lower() == "utc":
        return "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        matches = [tz for tz in available_timezones() if tz.lower() == name.lower()]
        if not matches:
            raise _fail(asset, source, f"unknown cron_timezone {name!r}") from None
        return matches[0]
    return name


def _no_required_parent_partition_nonexistent() -> dg.AutomationCondition:
    """False for a partition whose mapped parent partitions do not exist (dagster #34094).

    `eager()` requests such partitions (e.g. below an upstream whose partitions end earlier),
    and nothing at run time stops a dbt model that only declares deps. Declarative automation
    has no native condition for this in Dagster 1.13, so the rule `AutoMaterializePolicy.eager()`
    used to carry is bridged in (the UI shows its evaluation with the legacy renderer).
    """
    return ~dg.AutoMaterializeRule.skip_on_required_but_nonexistent_parents().to_asset_condition()


def on_upstream_change() -> dg.AutomationCondition:
    """Any upstream has a newer materialization, none missing or in progress; per partition.

    `eager()` also fires for newly *missing* partitions. Our downstream partitions appear only
    when their upstream lands, so that half is what makes a new file's partition cascade alone.
    Two changes to `eager()`, both pinned by tests/orchestration/test_automation_pitfalls.py:
    every partition is considered, not only the latest time window (dagster #24474: a late file
    for last week cascades to last week's partition alone), and a partition whose parent
    partitions do not exist is never requested (dagster #34094). Unpartitioned assets are
    evaluated by one node with the same rules (`orchestration.upstream_change`): the full tree
    costs ~50 nodes per asset in every tick.
    """
    per_partition = (
        dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())
        & _no_required_parent_partition_nonexistent()
    ).with_label(f"{ON_UPSTREAM_CHANGE} per partition")
    # unpartitioned assets (most dbt models) take a one-node evaluation of the same rules
    return UpstreamChangeCondition(per_partition, label=ON_UPSTREAM_CHANGE)


def cron_label(name: str, cron_schedule: str, cron_timezone: str) -> str:
    """The label the UI shows for a cron condition (asset page, automation evaluations): cron
    conditions are not Dagster schedules, so the schedule and its timezone are said here."""
    return f"{name}({cron_schedule}, {cron_timezone})"


def on_cron_no_deps(cron_schedule: str, cron_timezone: str) -> dg.AutomationCondition:
    """Once per cron tick, whatever the upstreams do (kept pending while a run is in flight).

    For time-partitioned assets, the latest time window is the one a tick refreshes."""
    return (
        dg.AutomationCondition.in_latest_time_window()
        & dg.AutomationCondition.cron_tick_passed(cron_schedule, cron_timezone).since_last_handled()
        & ~dg.AutomationCondition.in_progress()
    ).with_label(cron_label(ON_CRON_NO_DEPS, cron_schedule, cron_timezone))


def on_cron_with_deps(cron_schedule: str, cron_timezone: str) -> dg.AutomationCondition:
    """Once per cron tick, after every upstream has updated since that tick."""
    return dg.AutomationCondition.on_cron(cron_schedule, cron_timezone).with_label(
        cron_label(ON_CRON_WITH_DEPS, cron_schedule, cron_timezone)
    )


@cache
def _condition(name: str, cron: str | None, timezone: str | None) -> dg.AutomationCondition | None:
    """Conditions are immutable: one instance per distinct setting, shared by every asset that
    uses it, so a 500-model project builds a handful, not 500 (definitions load time)."""
    if name == ON_UPSTREAM_CHANGE:
        return on_upstream_change()
    if name == ON_CRON_NO_DEPS:
        return on_cron_no_deps(str(cron), str(timezone))
    if name == ON_CRON_WITH_DEPS:
        return on_cron_with_deps(str(cron), str(timezone))
    return None


def automation_condition_from_meta(
    meta: Mapping[str, Any] | None,
    *,
    asset: str,
    source: str,
    default: str | None = DEFAULT_CONDITION,
) -> dg.AutomationCondition | None:
    """Read `meta.dagster.automation_condition[_config]` and return the Dagster condition.

    `meta` is the asset's `meta` mapping (the level holding `dagster:`). `default` applies when
    nothing is set; pass None for assets that are started by something else (landing sensors).
    Raises AutomationConfigError naming `asset` and `source` for anything invalid.
    """
    dagster_meta = (meta or {}).get("dagster") or {}
    if not isinstance(dagster_meta, Mapping):
        raise _fail(asset, source, "meta.dagster must be a mapping")
    name = dagster_meta.get("automation_condition", default)
    config = dagster_meta.get("automation_condition_config") or {}
    if name is None:
        if config:
            raise _fail(asset, source, "automation_condition_config given without a condition")
        return None
    if name not in CONDITION_NAMES:
        raise _fail(
            asset,
            source,
            f"unknown automation_condition {name!r}; expected one of {CONDITION_NAMES}",
        )
    if not isinstance(config, Mapping):
        raise _fail(asset, source, "automation_condition_config must be a mapping")
    if name not in CRON_CONDITIONS:
        if config:
            raise _fail(
                asset, source, f"{name} takes no automation_condition_config, got {dict(config)}"
            )
        return _condition(name, None, None)

    unknown = set(config) - {"cron_schedule", "cron_timezone"}
    if unknown:
        raise _fail(asset, source, f"unknown automation_condition_config keys {sorted(unknown)}")
    cron = config.get("cron_schedule")
    if not cron:
        raise _fail(asset, source, f"{name} needs automation_condition_config.cron_schedule")
    if not isinstance(cron, str):
        raise _fail(asset, source, f"invalid cron_schedule {cron!r}")
    timezone = _normalise_timezone(str(config.get("cron_timezone", "UTC")), asset, source)
    try:
        return _condition(name, cron, timezone)
    except Exception as error:  # noqa: BLE001 - Dagster's own cron check (a ParameterCheckError)
        # Building the condition validates the schedule exactly as Dagster will run it, so a bad
        # `cron_schedule` fails at load with the asset named, not at the first tick.
        raise _fail(asset, source, f"invalid cron_schedule {cron!r}") from error
