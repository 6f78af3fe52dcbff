"""Every private Dagster name in common/dagster_private.py, pinned: after a Dagster upgrade that
moves or changes one, its test fails naming the symbol and what Landfall uses it for.

The names are read from common/dagster_private.py's own imports (module and symbol), so each is
imported here the way that module imports it, and a name added there without a pin fails
`test_every_private_name_is_pinned`. The public replacements of names that used to be here are
pinned at the end.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import socket
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from common.settings import PROJECT_ROOT

# read, not imported: if a name moved, importing the module would fail every test here with one
# ImportError, instead of the one pin that names the symbol and its use
SHIM = PROJECT_ROOT / "common" / "dagster_private.py"

# What Landfall uses each name for: said in every failure message.
USES = {
    "EntitySubset": "the subsets orchestration/upstream_change.py's on_upstream_change condition "
    "computes with (intersection, difference, emptiness)",
    "executable_in_same_run": "on_upstream_change's rule 'a parent requested in the same tick "
    "can run in the same run' (eager()'s own predicate)",
    "MAX_ENTITIES": "orchestration/automation_sensors.py slicing each location's automation "
    "sensors within the code-server sensor's limit",
    "AssetKeyPartitionKey": "on_upstream_change's lookup of an asset's latest storage id in the "
    "tick's prefetched records",
    "IN_PROGRESS_RUN_STATUSES": "on_upstream_change's 'parent or asset in progress' rule "
    "(Dagster's own notion of an unfinished run)",
    "ASSET_PARTITION_RANGE_START_TAG": "sensors/landing.py requesting one run for a tick's "
    "partition range",
    "ASSET_PARTITION_RANGE_END_TAG": "sensors/landing.py requesting one run for a tick's "
    "partition range",
    "PARTITION_NAME_TAG": "sensors/retention.py finding the runs of the partitions it removes "
    "(a failed run of one partition wrote no materialization to find it by)",
    "CachingInstanceQueryer": "on_upstream_change reading the unfinished runs once per tick "
    "(keyed on the tick's queryer)",
    "StepExecutionContext": "the landing step adding each object's metadata to its partition's "
    "materialization (add_asset_metadata_by_partition) without re-listing the range per object",
    "get_current_timestamp": "sensors/notifications.py judging freshness grace periods by the "
    "clock Dagster's freshness daemon judges the policies by",
    "ASSET_EVENTS": "BatchedSqliteEventLogStorage telling the asset events it batches (the "
    "ones Dagster's SQLite storage mirrors into its index shard) from the rest",
    "DagsterSqliteStorage": "BatchedSqliteStorage, the embedded default's instance storage "
    "(devstack/local_stack.write_local_instance)",
    "DagsterGrpcClient": "devstack/burst.py telling a code server that failed to load its "
    "definitions (it still answers the health check as serving) from one that loaded",
    "SqliteEventLogStorage": "BatchedSqliteEventLogStorage writing a landing run's partition "
    "events in one transaction",
}


def _private_imports() -> dict[str, str]:
    """{symbol: dagster module} as common/dagster_private.py imports them."""
    tree = ast.parse(SHIM.read_text(encoding="utf-8"))
    return {
        alias.asname or alias.name: node.module
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dagster._")
        for alias in node.names
    }


PRIVATE = _private_imports()


@contextmanager
def pinned(symbol: str) -> Iterator[None]:
    """Any failure inside reads: which symbol Dagster changed, and what Landfall uses it for."""
    try:
        yield
    except Exception as error:  # AssertionError included: a changed shape
        pytest.fail(
            f"Dagster {dg.__version__} changed {PRIVATE.get(symbol, '?')}.{symbol}, which "
            f"Landfall uses for {USES[symbol]} (common/dagster_private.py): "
            f"{type(error).__name__}: {error}",
            pytrace=False,
        )


def load(symbol: str) -> Any:
    with pinned(symbol):
        return getattr(importlib.import_module(PRIVATE[symbol]), symbol)


def _has_parameters(function: Any, *names: str) -> None:
    parameters = inspect.signature(function).parameters
    missing = [n for n in names if n not in parameters]
    assert not missing, f"{function.__qualname__} no longer takes {missing}"


def _exported() -> set[str]:
    for node in ast.parse(SHIM.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__":
            return set(ast.literal_eval(node.value))
    return set()


def test_every_private_name_is_pinned() -> None:
    assert set(PRIVATE) == _exported(), (
        "common/dagster_private.py: __all__ and the dagster._ imports differ"
    )
    unpinned = set(PRIVATE) - set(USES)
    assert not unpinned, f"add a pin (and its use) to {__file__} for {sorted(unpinned)}"
    assert not set(USES) - set(PRIVATE), f"no longer private, unpin: {set(USES) - set(PRIVATE)}"


@pytest.mark.parametrize("symbol", sorted(USES))
def test_importable_where_landfall_imports_it(symbol: str) -> None:
    value = load(symbol)
    with pinned(symbol):
        assert getattr(importlib.import_module("common.dagster_private"), symbol) is value


def test_max_entities_is_the_limit_the_code_server_sensor_enforces() -> None:
    limit = load("MAX_ENTITIES")
    with pinned("MAX_ENTITIES"):
        assert isinstance(limit, int) and limit > 0, repr(limit)
        eager = dg.AutomationCondition.eager()
        specs = [dg.AssetSpec(f"a{i}", automation_condition=eager) for i in range(limit + 1)]

        @dg.multi_asset(specs=specs)
        def many():  # never executed: the limit is checked before evaluation
            ...

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.BetaWarning)
            sensor = dg.AutomationConditionSensorDefinition(
                "too_many", target=dg.AssetSelection.all(), use_user_code_server=True
            )
        repository = dg.Definitions(assets=[many], sensors=[sensor]).get_repository_def()
        with dg.instance_for_test() as instance:
            context = dg.build_sensor_context(instance=instance, repository_def=repository)
            with pytest.raises(dg.DagsterInvalidInvocationError, match=f"limit of {limit}"):
                repository.get_sensor_def("too_many").evaluate_tick(context)


def test_the_partition_range_tags_are_the_ones_runs_and_backfills_read() -> None:
    start, end = load("ASSET_PARTITION_RANGE_START_TAG"), load("ASSET_PARTITION_RANGE_END_TAG")
    for symbol, tag, value in (
        ("ASSET_PARTITION_RANGE_START_TAG", start, "dagster/asset_partition_range_start"),
        ("ASSET_PARTITION_RANGE_END_TAG", end, "dagster/asset_partition_range_end"),
    ):
        with pinned(symbol):
            # the values are stored on runs: a change would orphan the ranges of existing runs
            assert tag == value, f"{tag!r} != {value!r}"
            # Dagster's public RunRequest reads the range back from exactly these tags
            request = dg.RunRequest(run_key="r", tags={start: "a", end: "c"})
            assert request.partition_key_range == dg.PartitionKeyRange("a", "c")


def test_the_partition_tag_is_the_one_a_partition_run_carries() -> None:
    tag = load("PARTITION_NAME_TAG")
    with pinned("PARTITION_NAME_TAG"):
        assert tag == "dagster/partition", repr(tag)
        partitions = dg.StaticPartitionsDefinition(["a", "b"])

        @dg.asset(partitions_def=partitions)
        def part() -> None: ...

        with dg.instance_for_test() as instance:
            result = dg.materialize([part], partition_key="b", instance=instance)
            # a run's tags are what retention searches by (RunsFilter(tags=...))
            runs = instance.get_runs(dg.RunsFilter(tags={tag: ["b"]}))
            assert [r.run_id for r in runs] == [result.run_id]


def test_in_progress_run_statuses_are_the_unfinished_ones() -> None:
    statuses = load("IN_PROGRESS_RUN_STATUSES")
    with pinned("IN_PROGRESS_RUN_STATUSES"):
        assert all(isinstance(s, dg.DagsterRunStatus) for s in statuses), statuses
        status = dg.DagsterRunStatus
        assert {status.STARTING, status.STARTED} <= set(statuses), statuses
        # upstream_change adds QUEUED itself; NOT_STARTED (never submitted) must stay out
        finished = {status.SUCCESS, status.FAILURE, status.CANCELED, status.NOT_STARTED}
        assert not finished & set(statuses), statuses
        assert status.QUEUED not in statuses, "QUEUED now included: drop our own addition"


def _two_assets() -> tuple[dg.Definitions, dg.AssetKey, dg.AssetKey]:
    @dg.asset
    def parent() -> None: ...

    @dg.asset(deps=[parent])
    def child() -> None: ...

    @dg.asset(partitions_def=dg.DailyPartitionsDefinition("2024-01-01"))
    def daily() -> None: ...

    @dg.asset(deps=[daily])
    def rollup() -> None: ...

    return dg.Definitions(assets=[parent, child, daily, rollup]), parent.key, child.key


def test_executable_in_same_run_takes_our_arguments_and_keeps_its_rule() -> None:
    predicate = load("executable_in_same_run")
    defs, parent, child = _two_assets()
    graph = defs.resolve_asset_graph()
    with pinned("executable_in_same_run"):
        _has_parameters(predicate, "asset_graph", "child_key", "parent_key")
        assert predicate(asset_graph=graph, child_key=child, parent_key=parent) is True
        # a daily-partitioned parent and an unpartitioned child cannot share a run
        rollup, daily = dg.AssetKey("rollup"), dg.AssetKey("daily")
        assert predicate(asset_graph=graph, child_key=rollup, parent_key=daily) is False


def test_asset_key_partition_key_is_what_the_queryer_looks_up() -> None:
    pair = load("AssetKeyPartitionKey")
    queryer_type = load("CachingInstanceQueryer")
    defs, parent, _ = _two_assets()
    with pinned("AssetKeyPartitionKey"):
        key = pair(parent)
        assert (key.asset_key, key.partition_key) == (parent, None)
    with pinned("CachingInstanceQueryer"):
        from dagster._core.loader import LoadingContextForTest

        with dg.instance_for_test() as instance:
            instance.report_runless_asset_event(dg.AssetMaterialization(parent))
            queryer = queryer_type(
                instance, defs.resolve_asset_graph(), LoadingContextForTest(instance)
            )
            storage_id = queryer.get_latest_materialization_or_observation_storage_id(key)
            assert isinstance(storage_id, int), storage_id
            assert queryer.instance is instance
            _has_parameters(queryer.get_current_materializations_for_run, "run_id")
            _has_parameters(queryer.get_planned_materializations_for_run, "run_id")


# What on_upstream_change calls on the automation context, the asset graph view (reached only
# through the context) and the subsets: (owner, method, keyword arguments we pass).
def _automation_api() -> list[tuple[str, type, str, tuple[str, ...]]]:
    from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView

    subset = load("EntitySubset")
    context = dg.AutomationContext
    return [
        ("EntitySubset", subset, "compute_intersection", ()),
        ("EntitySubset", subset, "compute_difference", ()),
        ("EntitySubset", subset, "is_empty", ()),
        ("EntitySubset", context, "for_child_condition", ("child_indices", "candidate_subset")),
        ("EntitySubset", context, "get_previous_requested_subset", ()),
        ("EntitySubset", context, "get_empty_subset", ()),
        ("EntitySubset", AssetGraphView, "get_full_subset", ("key",)),
        ("EntitySubset", AssetGraphView, "get_empty_subset", ("key",)),
        ("EntitySubset", AssetGraphView, "compute_parent_subset", ("parent_key", "subset")),
        ("EntitySubset", AssetGraphView, "compute_missing_subset", ("key", "from_subset")),
        (
            "EntitySubset",
            AssetGraphView,
            "compute_updated_since_temporal_context_subset",
            ("key", "temporal_context"),
        ),
        (
            "EntitySubset",
            AssetGraphView,
            "compute_latest_run_matches_subset",
            ("from_subset", "filter_fn"),
        ),
        ("EntitySubset", AssetGraphView, "compute_run_in_progress_subset", ("key", "from_subset")),
        (
            "EntitySubset",
            AssetGraphView,
            "compute_backfill_in_progress_subset",
            ("key", "from_subset"),
        ),
        ("CachingInstanceQueryer", AssetGraphView, "get_inner_queryer_for_back_compat", ()),
    ]


def test_the_automation_api_on_upstream_change_calls_is_there() -> None:
    for symbol, owner, method, keywords in _automation_api():
        with pinned(symbol):
            assert hasattr(owner, method), f"{owner.__name__}.{method} is gone"
            attribute = inspect.getattr_static(owner, method)
            if callable(attribute):
                _has_parameters(getattr(owner, method), *keywords)
    with pinned("EntitySubset"):
        for attribute in (
            "partitions_def",
            "candidate_subset",
            "asset_graph_view",
            "asset_graph",
            "key",
            "cursor",
            "previous_temporal_context",
            "previous_max_storage_id",
            "request_subsets_by_key",
        ):
            fields = getattr(dg.AutomationContext, "__dataclass_fields__", {})
            present = hasattr(dg.AutomationContext, attribute) or attribute in fields
            assert present, f"AutomationContext.{attribute} is gone"


def test_on_upstream_change_still_evaluates_through_them() -> None:
    """The condition end to end: a parent's new materialization requests its child once."""
    with pinned("EntitySubset"):
        from orchestration.automation import automation_condition_from_meta

        condition = automation_condition_from_meta({}, asset="pin", source="pin")

        @dg.asset
        def parent() -> None: ...

        @dg.asset(deps=[parent], automation_condition=condition)
        def child() -> None: ...

        defs = dg.Definitions(assets=[parent, child])
        now = datetime(2026, 1, 5, tzinfo=UTC)
        requested, cursor = [], None
        with dg.instance_for_test() as instance:
            for materialize in (False, True, False):
                now += timedelta(minutes=1)
                if materialize:
                    instance.report_runless_asset_event(dg.AssetMaterialization(parent.key))
                result = dg.evaluate_automation_conditions(
                    defs=defs, instance=instance, cursor=cursor, evaluation_time=now
                )
                cursor = result.cursor
                requested.append(result.get_num_requested(child.key))
        # first tick: handled; after the parent's update: requested; then handled
        assert requested == [0, 1, 0], requested


# --- the public replacements of names that used to be private here ------------------------


@pytest.mark.parametrize("cron", ["x", "0 25 * * *", "every day"])
def test_a_bad_cron_fails_at_load_naming_the_asset(cron: str) -> None:
    """Building the cron conditions validates the schedule (replaces is_valid_cron_string)."""
    from orchestration.automation import AutomationConfigError, automation_condition_from_meta

    for name in ("on_cron_no_deps", "on_cron_with_deps"):
        meta = {
            "dagster": {
                "automation_condition": name,
                "automation_condition_config": {"cron_schedule": cron},
            }
        }
        with pytest.raises(AutomationConfigError, match=r"asset raw/x: invalid cron_schedule"):
            automation_condition_from_meta(meta, asset="raw/x", source="zones/x.yaml")
    good = {"dagster": {"automation_condition": "on_cron_no_deps"}}
    good["dagster"]["automation_condition_config"] = {"cron_schedule": "0 6 * * *"}
    condition = automation_condition_from_meta(good, asset="raw/x", source="zones/x.yaml")
    assert condition is not None and condition.get_label() == "on_cron_no_deps(0 6 * * *, UTC)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(120)
def test_the_code_server_health_check_answers_once_serving(tmp_path: Path) -> None:
    """gRPC's standard health check, as `dagster api grpc-health-check` makes it (replaces the
    private gRPC client's ping in devstack/burst.py)."""
    from devstack.burst import code_server_serving, wait_until

    port = _free_port()
    assert not code_server_serving(port)  # nothing listening
    (tmp_path / "defs.py").write_text("import dagster as dg\ndefs = dg.Definitions()\n")
    server = subprocess.Popen(
        [sys.executable, "-m", "dagster", "api", "grpc", "-f", "defs.py", "-p", str(port)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: code_server_serving(port), 90, "the code server")
        cli = subprocess.run(
            [sys.executable, "-m", "dagster", "api", "grpc-health-check", "-p", str(port)],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0, cli.stdout + cli.stderr  # the public check agrees
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a loaded machine: the shutdown is not under test
            server.kill()
            server.wait(timeout=30)


@pytest.mark.timeout(180)
def test_a_code_server_that_failed_to_load_says_why(tmp_path: Path) -> None:
    """`dagster code-server start` serves, and passes the health check, with a module that
    raises; code_server_load_error is how the burst harness tells (DagsterGrpcClient)."""
    from common.dagster_private import code_server_load_error
    from devstack.burst import code_server_command, code_server_serving, wait_until

    (tmp_path / "good.py").write_text("import dagster as dg\ndefs = dg.Definitions()\n")
    (tmp_path / "bad.py").write_text("raise FileNotFoundError('manifest.json is missing')\n")
    ports = {name: _free_port() for name in ("good", "bad")}
    servers = [
        subprocess.Popen(
            code_server_command(name, port, name),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, port in ports.items()
    ]
    try:
        for port in ports.values():
            wait_until(lambda port=port: code_server_serving(port), 150, "the code servers")
        with pinned("DagsterGrpcClient"):
            assert code_server_load_error(ports["good"]) is None
            error = code_server_load_error(ports["bad"])
            assert error is not None and "manifest.json is missing" in error, error
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=30)


def test_dagsters_clock_is_the_one_freeze_time_moves() -> None:
    now = load("get_current_timestamp")
    with pinned("get_current_timestamp"):
        from dagster._time import get_current_datetime

        assert abs(now() - get_current_datetime().timestamp()) < 5


def test_run_tags_can_be_added_to_a_started_run() -> None:
    """common.dagster_private.add_run_tags wraps DagsterInstance.add_run_tags (not @public):
    the landing step tags its run with the count of files it quarantined."""
    from common.dagster_private import add_run_tags

    with dg.instance_for_test() as instance:

        @dg.asset
        def tagged(context) -> None:  # noqa: ANN001 - annotations are strings in this module
            add_run_tags(context.instance, context.run.run_id, {"landfall/quarantined": "2"})

        result = dg.materialize([tagged], instance=instance)
        run = instance.get_run_by_id(result.run_id)
        assert run is not None and run.tags.get("landfall/quarantined") == "2", (
            f"Dagster {dg.__version__} changed DagsterInstance.add_run_tags, which the landing "
            "step uses to tag runs that quarantined files"
        )


def test_metadata_by_partition_lands_on_each_partitions_materialization() -> None:
    """add_asset_metadata_by_partition fills the accumulator context.add_asset_metadata fills:
    each partition of a range run gets its own metadata, and a partition outside the run is
    refused."""
    from common.dagster_private import add_asset_metadata_by_partition

    partitions = dg.DynamicPartitionsDefinition(name="pinned_files")

    @dg.asset(partitions_def=partitions)
    def files(context) -> dg.MaterializeResult:  # noqa: ANN001 - annotations are strings here
        with pytest.raises(ValueError, match="not targeted"):
            add_asset_metadata_by_partition(context, files.key, {"elsewhere": {"n": 0}})
        add_asset_metadata_by_partition(
            context, files.key, {k: {"n": int(k[1:])} for k in context.partition_keys}
        )
        return dg.MaterializeResult(metadata={"shared": 1})

    with dg.instance_for_test() as instance, pinned("StepExecutionContext"):
        instance.add_dynamic_partitions("pinned_files", ["f1", "f2", "f3"])
        result = dg.materialize(
            [files],
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": "f1",
                "dagster/asset_partition_range_end": "f3",
            },
        )
        by_partition = {
            m.partition: m.metadata for m in result.asset_materializations_for_node("files")
        }
        assert {p: md["n"].value for p, md in by_partition.items()} == {
            "f1": 1,
            "f2": 2,
            "f3": 3,
        }
        assert all(md["shared"].value == 1 for md in by_partition.values())


# --- the embedded default's batched SQLite event log -----------------------------------------

RANGE = ["p0", "p1", "p2", "p3", "p4"]


def _range_run(instance: dg.DagsterInstance) -> str:
    """A partition-range run of two assets (the landing step's shape): five planned and five
    materialization events per asset, plus a check and the run's own events."""
    from common.dagster_private import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    partitions = dg.StaticPartitionsDefinition(RANGE)

    @dg.multi_asset(
        specs=[
            dg.AssetSpec("table", partitions_def=partitions),
            dg.AssetSpec("child_table", partitions_def=partitions),
        ],
        check_specs=[dg.AssetCheckSpec("accepted", asset="table")],
        can_subset=False,
    )
    def load(context):  # noqa: ANN001 - Dagster reads a string annotation as a wrong type
        for key in context.partition_keys:
            context.add_asset_metadata({"rows": int(key[1:])}, "table", partition_key=key)
        yield dg.MaterializeResult(asset_key="table")
        yield dg.MaterializeResult(asset_key="child_table")
        yield dg.AssetCheckResult(asset_key="table", check_name="accepted", passed=True)

    tags = {ASSET_PARTITION_RANGE_START_TAG: "p1", ASSET_PARTITION_RANGE_END_TAG: "p3"}
    result = dg.materialize([load], instance=instance, tags=tags)
    assert result.success
    return result.run_id


def _what_was_stored(instance: dg.DagsterInstance, run_id: str) -> dict[str, Any]:
    """Everything a reader sees of the run, without ids and timestamps."""

    def described(record: Any) -> tuple:
        event = record.event_log_entry
        dagster_event = event.dagster_event
        if dagster_event is None:
            return ("log", event.user_message)
        metadata = {}
        if dagster_event.is_step_materialization:
            metadata = dagster_event.step_materialization_data.materialization.metadata
        return (
            dagster_event.event_type_value,
            dagster_event.asset_key.to_user_string() if dagster_event.asset_key else None,
            dagster_event.partition,
            {k: v.value for k, v in metadata.items()},
        )

    stored: dict[str, Any] = {
        "run": [described(r) for r in instance.get_records_for_run(run_id).records],
    }
    for key in (dg.AssetKey("table"), dg.AssetKey("child_table")):
        name = key.to_user_string()
        filters = dg.AssetRecordsFilter(asset_key=key)
        stored[f"{name} materializations"] = [
            described(r) for r in instance.fetch_materializations(filters, limit=100).records
        ]
        stored[f"{name} materialized"] = instance.get_materialized_partitions(key)
        [record] = instance.get_asset_records([key])
        entry = record.asset_entry
        stored[f"{name} entry"] = (
            entry.last_run_id,
            described(entry.last_materialization_record),
            entry.last_materialization_record.storage_id
            == instance.fetch_materializations(filters, limit=1).records[0].storage_id,
        )
        stored[f"{name} planned"] = [
            instance.event_log_storage.get_latest_planned_materialization_info(key, p)
            for p in (None, *RANGE)
        ]
    check = dg.AssetCheckKey(dg.AssetKey("table"), "accepted")
    stored["check"] = instance.event_log_storage.get_latest_asset_check_execution_by_key([check])[
        check
    ].status
    return stored


def _normalised(stored: dict[str, Any], run_id: str) -> str:
    return repr(stored).replace(run_id, "<run>")


def test_the_batched_sqlite_event_log_stores_what_dagsters_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same run on Dagster's SQLite storage and on ours, both with Dagster's event batching
    on: every event, index row, asset entry, planned run and check result read back the same;
    and ours wrote the range's planned and materialized events as batches."""
    from devstack.local_stack import write_local_instance

    storage_type = load("SqliteEventLogStorage")
    load("DagsterSqliteStorage")
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    batches: list[list[str]] = []
    from common.dagster_private import BatchedSqliteEventLogStorage

    original = BatchedSqliteEventLogStorage._store_asset_events

    def recorded(self: Any, events: list) -> None:
        if events:
            batches.append([e.dagster_event_type.value for e in events])
        original(self, events)

    monkeypatch.setattr(BatchedSqliteEventLogStorage, "_store_asset_events", recorded)
    stored = {}
    for name in ("dagster", "ours"):
        home = tmp_path / name
        if name == "ours":
            write_local_instance(home)
        else:
            home.mkdir()
            (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        with dg.DagsterInstance.from_config(str(home)) as instance:
            with pinned("SqliteEventLogStorage"):
                assert isinstance(instance.event_log_storage, storage_type)
                assert (type(instance.event_log_storage) is BatchedSqliteEventLogStorage) == (
                    name == "ours"
                )
            run_id = _range_run(instance)
            stored[name] = _normalised(_what_was_stored(instance, run_id), run_id)
    with pinned("SqliteEventLogStorage"):
        assert stored["ours"] == stored["dagster"]
        planned = [b for b in batches if set(b) == {"ASSET_MATERIALIZATION_PLANNED"}]
        materialized = [b for b in batches if set(b) == {"ASSET_MATERIALIZATION"}]
        assert [len(b) for b in planned] == [6], batches  # 3 partitions of both, at creation
        assert [len(b) for b in materialized] == [3, 3], batches  # each output's range at once


def test_asset_events_are_the_ones_dagster_mirrors_into_the_index() -> None:
    events = load("ASSET_EVENTS")
    with pinned("ASSET_EVENTS"):
        types = dg.DagsterEventType
        assert {types.ASSET_MATERIALIZATION, types.ASSET_MATERIALIZATION_PLANNED} <= set(events)
        assert types.ASSET_CHECK_EVALUATION not in events  # stored one by one, as Dagster does
        source = inspect.getsource(load("SqliteEventLogStorage").store_event)
        assert "in ASSET_EVENTS" in source, "SQLite store_event no longer tests ASSET_EVENTS"
