"""The one place Landfall touches private Dagster names (`dagster._…`).

Each name is here because no public API serves its use (the comment says why); each is pinned
by tests/common/test_dagster_private.py, which fails naming the symbol and its use when a Dagster
upgrade moves or changes it. Import these from here, never from `dagster._…` directly.

Replaced by public APIs (Dagster 1.13.27) and gone from here: the cron validator (building
`AutomationCondition.on_cron` / `cron_tick_passed` validates the schedule the way Dagster runs
it), `UnresolvedAssetJobDefinition` (landing sensors name their job with `job_name=`), the
sensor instigator type (sensor states are found by name) and the gRPC client's ping (gRPC's
standard health check, as `dagster api grpc-health-check` makes it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dagster import AssetExecutionContext, AssetKey, DagsterInstance, EventLogEntry

# --- declarative automation: our on_upstream_change condition (orchestration.upstream_change) --
# A custom AutomationCondition's evaluate() receives and returns subsets of this type; Dagster
# exports the condition and context classes but not the subset type they traffic in (used in
# annotations only).
from dagster._core.asset_graph_view.entity_subset import EntitySubset

# eager() decides "will the parent be requested in the same run" with this predicate; a
# re-implementation would drift from Dagster's own rule (same code location, same partitioning).
from dagster._core.definitions.assets.graph.asset_graph import executable_in_same_run

# The sensor that evaluates conditions in the code server accepts at most this many assets and
# checks; we slice locations by it, and a hard-coded 500 would drift silently.
from dagster._core.definitions.automation_condition_sensor_definition import MAX_ENTITIES

# The (asset, partition) pair the queryer's materialization lookups take; not exported.
from dagster._core.definitions.events import AssetKeyPartitionKey

# The event types Dagster mirrors into the SQLite index shard (its own store_event's test), for
# BatchedSqliteEventLogStorage below.
from dagster._core.events import ASSET_EVENTS

# The landing step's per-partition metadata goes through the step context's metadata accumulator
# (see add_asset_metadata_by_partition).
from dagster._core.execution.context.system import StepExecutionContext

# Run statuses Dagster itself counts as in progress (its queryer's in-progress subset); spelling
# them out would miss a status a later Dagster adds.
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

# Subclassed by BatchedSqliteEventLogStorage below; exported by no public module.
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

# The storage `dagster.yaml` names; it has no hook for the event log it builds (see below).
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage

# A partition-range run is requested with the range tags: RunRequest has no partition_key_range
# argument (only a read-only property decoding these tags), and Dagster's own backfills mark
# ranges this way. A single-partition run carries its key in PARTITION_NAME_TAG, which Dagster
# exports no constant for: retention finds the runs of the partitions it removes by these tags
# (a failed or crashed run wrote no materialization to find it by).
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

# A code server whose definitions failed to load: `dagster code-server start` keeps serving, and
# answers gRPC's health check as SERVING, when its module raises; only the server's own API
# (ListRepositories) tells. No public call asks it; devstack/burst.py waits on it.
from dagster._grpc.client import DagsterGrpcClient

# Dagster's clock. Its freshness daemon judges FreshnessPolicies by it, so the freshness
# notification sensor judges grace periods by the same clock (and tests that freeze it with
# Dagster's freeze_time move both together).
from dagster._time import get_current_timestamp

# The per-tick cache every condition evaluation shares (AutomationContext exposes it, typed as
# this, through asset_graph_view.get_inner_queryer_for_back_compat()); in-progress runs are read
# once per tick keyed on it.
from dagster._utils.caching_instance_queryer import CachingInstanceQueryer


def add_run_tags(instance: DagsterInstance, run_id: str, tags: Mapping[str, str]) -> None:
    """Tag a run from inside it (the landing step tags its run with what it quarantined).

    `DagsterInstance.add_run_tags` is not marked @public in dagster 1.13.27, and no public API
    adds tags once a run has started (dagster #27502 asks for one); Dagster's own run launchers
    use this method to tag runs.
    """
    instance.add_run_tags(run_id, dict(tags))


def add_asset_metadata_by_partition(
    context: AssetExecutionContext,
    asset_key: AssetKey,
    metadata: Mapping[str, Mapping[str, Any]],
) -> None:
    """`context.add_asset_metadata(m, asset_key, partition_key=p)` for every (p, m), with the
    targeted partitions listed once instead of once per call.

    The public method re-lists the run's partition range from the instance on every call (three
    storage queries, the last one listing every partition of the asset): a 200-object burst run
    spent 15 s of its step there on SQLite, and the cost grows with partitions × objects. Same
    check (a partition outside the run is refused), same accumulator the public method fills.
    """
    targeted = set(context.partition_keys)
    outside = [key for key in metadata if key not in targeted]
    if outside:
        raise ValueError(f"partitions not targeted by this run: {outside[:5]}")
    step: StepExecutionContext = context.get_step_execution_context()
    accumulator = step._metadata_accumulator  # noqa: SLF001 - what add_asset_metadata fills
    for partition_key, values in metadata.items():
        accumulator = accumulator.with_additional_asset_metadata(
            asset_key=asset_key, partition_key=partition_key, metadata=values
        )
    step._metadata_accumulator = accumulator  # noqa: SLF001


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log, writing a batch of asset events in two transactions.

    With $DAGSTER_EVENT_BATCH_SIZE set, Dagster hands the storage the per-partition events of
    one step output (a landing run's materializations) and of one run's creation (its planned
    materializations) as one batch. Dagster's Postgres storage writes such a batch at once; its
    SQLite storage inherits the base class's loop, which opens two database connections and
    commits twice per event: a 500-object landing run spent ~10 s creating its run and ~15 s
    materializing its partitions, holding the warehouse slot, in those commits. Here the batch is
    the same rows, written by the same statements in the same order, in one transaction per
    database; any other event (run status, asset check) is stored one by one, as before.
    """

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        block: list[EventLogEntry] = []
        for event in events:
            if event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS:
                block.append(event)
                continue
            self._store_asset_events(block)
            block = []
            self.store_event(event)
        self._store_asset_events(block)

    def _store_asset_events(self, events: list[EventLogEntry]) -> None:
        """SqliteEventLogStorage.store_event for asset events, one transaction per database."""
        if not events:
            return
        statements = [self.prepare_insert_event(event) for event in events]
        by_run: dict[str, list] = {}
        for event, statement in zip(events, statements, strict=True):
            by_run.setdefault(event.run_id, []).append(statement)
        for run_id, run_statements in by_run.items():
            with self.run_connection(run_id) as conn:
                for statement in run_statements:
                    conn.execute(statement)
        with self.index_transaction() as conn:
            ids = [conn.execute(statement).inserted_primary_key[0] for statement in statements]
            self._store_asset_event_tags(conn, events, ids)
            # Each event overwrites its asset's row with the columns its type writes (the last
            # materialization, run id, timestamp), so the last event of each type per asset,
            # applied in order, leaves the row as applying every event would.
            last = {
                (event.dagster_event.asset_key, event.dagster_event_type): i
                for i, event in enumerate(events)
            }
            for i in sorted(last.values()):
                self._store_asset_event(conn, events[i], ids[i])


def code_server_load_error(port: int, host: str = "127.0.0.1") -> str | None:
    """What stopped the code server at `port` loading its definitions (the innermost error's
    message), or None when they loaded."""
    from dagster import deserialize_value

    answer = deserialize_value(DagsterGrpcClient(port=port, host=host).list_repositories())
    if type(answer).__name__ != "SerializableErrorInfo":
        return None
    while answer.cause is not None:  # the user's exception, under Dagster's load-error wrapper
        answer = answer.cause
    return answer.message.strip()


class BatchedSqliteStorage(DagsterSqliteStorage):
    """`DagsterSqliteStorage` (the default `storage: sqlite:`) with the batched event log above;
    devstack/local_stack.write_local_instance names it as `storage: custom:`."""

    def __init__(self, base_dir: str, inst_data: Any = None) -> None:
        super().__init__(base_dir, inst_data)
        # same folder as the event log it replaces (DagsterSqliteStorage's own layout)
        self._event_log_storage = BatchedSqliteEventLogStorage(self._event_log_storage._base_dir)  # noqa: SLF001

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Mapping[str, Any]) -> Any:
        # the parent builds DagsterSqliteStorage by name, not cls
        return cls.from_local(inst_data=inst_data, **config_value)


__all__ = [
    "ASSET_EVENTS",
    "DagsterGrpcClient",
    "DagsterSqliteStorage",
    "SqliteEventLogStorage",
    "ASSET_PARTITION_RANGE_END_TAG",
    "ASSET_PARTITION_RANGE_START_TAG",
    "PARTITION_NAME_TAG",
    "IN_PROGRESS_RUN_STATUSES",
    "StepExecutionContext",
    "MAX_ENTITIES",
    "AssetKeyPartitionKey",
    "CachingInstanceQueryer",
    "EntitySubset",
    "executable_in_same_run",
    "get_current_timestamp",
]
