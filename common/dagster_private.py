"""The one place Landfall touches private Dagster names (`dagster._…`).

Each name is here because no public API serves its use (the comment says why); each is pinned
by tests/common/test_dagster_private.py, which fails naming the symbol when a Dagster upgrade
moves or changes it. Import these from here, never from `dagster._…` directly.
"""

from __future__ import annotations

from collections.abc import Mapping

from dagster import DagsterInstance

# --- declarative automation: our on_upstream_change condition (orchestration.upstream_change) --
# A custom AutomationCondition's evaluate() receives and returns subsets of this type; Dagster
# exports the condition and context classes but not the subset type they traffic in.
from dagster._core.asset_graph_view.entity_subset import EntitySubset

# eager() decides "will the parent be requested in the same run" with this predicate; a
# re-implementation would drift from Dagster's own rule (same code location, same partitioning).
from dagster._core.definitions.assets.graph.asset_graph import executable_in_same_run

# The sensor that evaluates conditions in the code server accepts at most this many assets and
# checks; we slice locations by it, and a hard-coded 500 would drift silently.
from dagster._core.definitions.automation_condition_sensor_definition import MAX_ENTITIES

# The (asset, partition) pair the queryer's materialization lookups take; not exported.
from dagster._core.definitions.events import AssetKeyPartitionKey

# Sensor instigator type, to read automation sensor ticks from the instance (burst figures).
from dagster._core.definitions.run_request import InstigatorType

# The return type of `dg.define_asset_job`, for annotations; the public JobDefinition is what it
# resolves into, not what it is.
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,
)

# Run statuses Dagster itself counts as in progress (its queryer's in-progress subset).
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

# A partition-range run is requested with these tags: RunRequest has no partition_key_range
# argument, and this is how Dagster's own backfills mark ranges.
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

# A code server's health, for the local stack's readiness wait; the CLI's `dagster api grpc-
# health-check` costs a Python start per poll.
from dagster._grpc.client import DagsterGrpcClient

# Dagster's clock. Its freshness daemon judges FreshnessPolicies by it, so the freshness
# notification sensor judges grace periods by the same clock (and tests that freeze it with
# Dagster's freeze_time move both together).
from dagster._time import get_current_timestamp

# The per-tick cache every condition evaluation shares (AutomationContext exposes it typed as
# this); in-progress runs are read once per tick keyed on it.
from dagster._utils.caching_instance_queryer import CachingInstanceQueryer

# Cron strings are validated the way Dagster's schedules and AutomationCondition.on_cron will
# parse them, so a bad `cron_schedule` fails at load with the asset named, not at the first tick.
from dagster._utils.schedules import is_valid_cron_string


def add_run_tags(instance: DagsterInstance, run_id: str, tags: Mapping[str, str]) -> None:
    """Tag a run from inside it (the landing step tags its run with what it quarantined).

    `DagsterInstance.add_run_tags` is not marked @public in dagster 1.13.27, and no public API
    adds tags once a run has started (dagster #27502 asks for one); Dagster's own run launchers
    use this method to tag runs.
    """
    instance.add_run_tags(run_id, dict(tags))


__all__ = [
    "ASSET_PARTITION_RANGE_END_TAG",
    "ASSET_PARTITION_RANGE_START_TAG",
    "IN_PROGRESS_RUN_STATUSES",
    "MAX_ENTITIES",
    "AssetKeyPartitionKey",
    "CachingInstanceQueryer",
    "DagsterGrpcClient",
    "EntitySubset",
    "InstigatorType",
    "UnresolvedAssetJobDefinition",
    "add_run_tags",
    "executable_in_same_run",
    "get_current_timestamp",
    "is_valid_cron_string",
]
