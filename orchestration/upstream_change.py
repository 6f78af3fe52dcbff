"""`on_upstream_change` evaluated as one condition node per unpartitioned asset.

Dagster's `eager()` is a tree of ~50 nodes per asset once its dependency operators fan out over
the parents; on a 700-asset graph a tick spends most of its time creating, evaluating and
serializing those nodes, and one SQL query per asset to learn whether it is in progress.
This condition computes the same answer for an unpartitioned asset in one node, from the
asset records Dagster prefetches for the tick, with the in-progress runs read once per tick.

Partitioned assets are evaluated by the full composite (`eager()` with our two changes, see
`orchestration.automation.on_upstream_change`), which this node holds as its only child: the
per-partition rules (#24474, #34094) are Dagster's there, not re-implemented here.

The rules for an unpartitioned asset, as `eager()` states them:
- trigger: a parent has a new materialization since the previous tick that was not made by a
  run that also targeted this asset, or a parent will be requested in this tick and can run
  in the same run; or the asset became missing (its materializations were wiped).
- handled: the asset was requested by the previous tick or materialized since it; the first
  evaluation of the condition also counts as handled (no request on the first tick).
  A trigger stays pending until handled; when both happen in one tick, handled wins (as in
  `eager()`, whose boolean operators carry no timing to order them).
- requested when pending and no parent is missing (and not about to be requested), no parent
  is in progress, and the asset itself is not in progress (a run or a backfill).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import dagster as dg

from common.dagster_private import (
    IN_PROGRESS_RUN_STATUSES,
    AssetKeyPartitionKey,
    CachingInstanceQueryer,
    EntitySubset,
    executable_in_same_run,
)

# Dagster's own notion (`CachingInstanceQueryer.get_in_progress_asset_subset`): a created run
# that was never submitted (NOT_STARTED) is not in progress
_IN_PROGRESS_STATUSES = [*IN_PROGRESS_RUN_STATUSES, dg.DagsterRunStatus.QUEUED]

# one entry per tick: the queryer lives exactly as long as one evaluation
_IN_PROGRESS_BY_TICK: weakref.WeakKeyDictionary[CachingInstanceQueryer, frozenset[dg.AssetKey]] = (
    weakref.WeakKeyDictionary()
)


def _in_progress_keys(queryer: CachingInstanceQueryer) -> frozenset[dg.AssetKey]:
    """Assets planned by a run that has not finished and has not yet materialized them.

    One query for the unfinished runs (a handful) instead of one per asset. Stricter than
    Dagster's per-asset check, which looks only at the latest planned run."""
    keys = _IN_PROGRESS_BY_TICK.get(queryer)
    if keys is None:
        planned: set[dg.AssetKey] = set()
        for run in queryer.instance.get_runs(filters=dg.RunsFilter(statuses=_IN_PROGRESS_STATUSES)):
            run_planned = run.asset_selection or queryer.get_planned_materializations_for_run(
                run.run_id
            )
            done = queryer.get_current_materializations_for_run(run_id=run.run_id)
            planned |= set(run_planned) - set(done)
        keys = _IN_PROGRESS_BY_TICK[queryer] = frozenset(planned)
    return keys


class _State:
    """The node's cursor: a trigger not yet handled, and whether the asset was missing."""

    def __init__(self, pending: bool, missing: bool) -> None:
        self.pending, self.missing = pending, missing

    @classmethod
    def parse(cls, cursor: str | None) -> _State:
        cursor = cursor or ""
        return cls(pending="p" in cursor, missing="m" in cursor)

    def dump(self) -> str:
        # never empty: an empty cursor would read as "first evaluation" next tick
        return "s" + ("p" if self.pending else "") + ("m" if self.missing else "")


def _keys(keys: Sequence[dg.AssetKey]) -> dg.MetadataValue:
    return dg.MetadataValue.text(", ".join(sorted(k.to_user_string() for k in keys)))


class UpstreamChangeCondition(dg.AutomationCondition):
    """See the module docstring; `partitioned` evaluates partitioned assets."""

    def __init__(self, partitioned: dg.AutomationCondition, label: str) -> None:
        self._partitioned = partitioned
        self._label = label

    @property
    def name(self) -> str:
        return self._label

    @property
    def description(self) -> str:
        return (
            "Any upstream has a newer materialization, none missing or in progress "
            "(per partition for partitioned assets)"
        )

    def get_label(self) -> str | None:
        return self._label

    @property
    def children(self) -> Sequence[dg.AutomationCondition]:
        return [self._partitioned]

    async def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:  # ty: ignore[invalid-method-override]
        if context.partitions_def is not None:
            child = await context.for_child_condition(
                self._partitioned, child_indices=[0], candidate_subset=context.candidate_subset
            ).evaluate_async()
            return dg.AutomationResult(
                context, true_subset=child.true_subset, child_results=[child]
            )
        return await _evaluate_unpartitioned(context)


async def _evaluate_unpartitioned(context: dg.AutomationContext) -> dg.AutomationResult:
    view = context.asset_graph_view
    queryer = view.get_inner_queryer_for_back_compat()
    graph = context.asset_graph
    key = context.key
    full = view.get_full_subset(key=key)
    empty = context.get_empty_subset()
    previous = _State.parse(context.cursor)
    first_evaluation = context.cursor is None or context.previous_temporal_context is None

    def latest_id(asset: dg.AssetKey) -> int | None:
        return queryer.get_latest_materialization_or_observation_storage_id(
            AssetKeyPartitionKey(asset)
        )

    async def updated_since_previous_tick(asset: dg.AssetKey) -> EntitySubset:
        # cheap test first: the prefetched asset record's latest storage id
        latest, since = latest_id(asset), context.previous_max_storage_id
        # (no storage id at the previous tick: nothing had happened yet, so anything is new)
        if first_evaluation or latest is None or (since is not None and latest <= since):
            return view.get_empty_subset(key=asset)
        return await view.compute_updated_since_temporal_context_subset(
            key=asset, temporal_context=context.previous_temporal_context
        )

    def will_be_requested(parent: dg.AssetKey, parent_subset: EntitySubset) -> EntitySubset:
        requested = context.request_subsets_by_key.get(parent)
        if (
            requested is None
            or not graph.get(parent).is_materializable
            or not executable_in_same_run(asset_graph=graph, child_key=key, parent_key=parent)
        ):
            return view.get_empty_subset(key=parent)
        return parent_subset.compute_intersection(requested)

    def targets_this_asset(run_record) -> bool:
        run = run_record.dagster_run
        return key in (run.asset_selection or set()) | (run.asset_check_selection or set())

    parents = [p for p in graph.get(key).parent_keys if graph.has(p) and p != key]
    parent_subsets = {p: view.compute_parent_subset(parent_key=p, subset=full) for p in parents}

    # trigger: parents updated since the previous tick (not by a run that targeted this asset)
    updated_parents = []
    for parent, parent_subset in parent_subsets.items():
        if not will_be_requested(parent, parent_subset).is_empty:
            updated_parents.append(parent)
            continue
        updated = (await updated_since_previous_tick(parent)).compute_intersection(parent_subset)
        if updated.is_empty:
            continue
        with_us = await view.compute_latest_run_matches_subset(
            from_subset=updated, filter_fn=targets_this_asset
        )
        if not updated.compute_difference(with_us).is_empty:
            updated_parents.append(parent)
    missing = not (await view.compute_missing_subset(key=key, from_subset=full)).is_empty
    newly_missing = missing and not previous.missing and not first_evaluation
    triggered = bool(updated_parents) or newly_missing

    # handled: requested by the previous tick, materialized since, or the first evaluation
    self_updated = not (await updated_since_previous_tick(key)).is_empty
    previously_requested = not (context.get_previous_requested_subset(key) or empty).is_empty
    handled = first_evaluation or self_updated or previously_requested
    pending = (previous.pending or triggered) and not handled

    metadata: dict[str, dg.MetadataValue] = {}
    if updated_parents:
        metadata["updated_parents"] = _keys(updated_parents)
    waiting: list[str] = []
    if pending:
        in_progress_runs = _in_progress_keys(queryer)

        async def in_progress(asset: dg.AssetKey, subset: EntitySubset) -> bool:
            """A run (the tick's one read for unpartitioned assets) or a backfill holds it."""
            if graph.get(asset).partitions_def is None:
                running = asset in in_progress_runs
            else:
                running = not (
                    await view.compute_run_in_progress_subset(key=asset, from_subset=subset)
                ).is_empty
            return (
                running
                or not (
                    await view.compute_backfill_in_progress_subset(key=asset, from_subset=subset)
                ).is_empty
            )

        if await in_progress(key, full):
            waiting.append(f"{key.to_user_string()} in progress")
        for parent, parent_subset in parent_subsets.items():
            name = parent.to_user_string()
            parent_missing = (
                await view.compute_missing_subset(key=parent, from_subset=parent_subset)
            ).compute_difference(will_be_requested(parent, parent_subset))
            if not parent_missing.is_empty:
                waiting.append(f"{name} missing")
            if await in_progress(parent, parent_subset):
                waiting.append(f"{name} in progress")
    if waiting:
        metadata["waiting_for"] = dg.MetadataValue.text(", ".join(waiting))
    return dg.AutomationResult(
        context,
        true_subset=full if pending and not waiting else empty,
        cursor=_State(pending, missing).dump(),
        metadata=metadata,
    )
