"""on_upstream_change's one-node evaluation of unpartitioned assets against Dagster's `eager()`.

The same event sequence is evaluated by both conditions on one instance (each with its own
cursor), with runs really created (planned materializations, statuses) so `in_progress` is
Dagster's own notion on the stock side; every tick must request the same assets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData

from orchestration.automation import automation_condition_from_meta
from orchestration.upstream_change import UpstreamChangeCondition

START = datetime(2026, 11, 2, tzinfo=UTC)


def _graph(condition: dg.AutomationCondition) -> dg.Definitions:
    """a → b → c, a → c, and d with two parents (b and an unpartitioned e)."""

    @dg.asset
    def a() -> None: ...

    @dg.asset(deps=[a], automation_condition=condition)
    def b() -> None: ...

    @dg.asset(deps=[a, b], automation_condition=condition)
    def c() -> None: ...

    @dg.asset
    def e() -> None: ...

    @dg.asset(deps=[b, e], automation_condition=condition)
    def d() -> None: ...

    return dg.Definitions(assets=[a, b, c, d, e], jobs=[dg.define_asset_job("everything")])


class Twin:
    """Ticks ours and stock eager() over one instance and compares what each requests."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        ours = automation_condition_from_meta({}, asset="test", source="test")
        assert isinstance(ours, UpstreamChangeCondition)
        self.instance = instance
        self.defs = {"ours": _graph(ours), "eager": _graph(dg.AutomationCondition.eager())}
        self.cursors: dict[str, object] = {"ours": None, "eager": None}
        self.now = START

    def tick(self) -> set[str]:
        self.now += timedelta(minutes=1)
        requested = {}
        for name, defs in self.defs.items():
            result = dg.evaluate_automation_conditions(
                defs=defs,
                instance=self.instance,
                cursor=self.cursors[name],
                evaluation_time=self.now,
            )
            self.cursors[name] = result.cursor
            requested[name] = {
                key.to_user_string()
                for key in defs.resolve_asset_graph().materializable_asset_keys
                if result.get_num_requested(key)
            }
        assert requested["ours"] == requested["eager"], f"at {self.now}: {requested}"
        return requested["ours"]

    def materialize(self, *keys: str) -> None:
        for key in keys:
            self.instance.report_runless_asset_event(dg.AssetMaterialization(key))

    def start_run(self, *keys: str) -> dg.DagsterRun:
        """A run planning `keys`, as the daemon creates it (planned-materialization events)."""
        job = self.defs["ours"].resolve_job_def("everything")
        run = self.instance.create_run_for_job(
            job, asset_selection=frozenset(dg.AssetKey(k) for k in keys)
        )
        self._event(run, DagsterEventType.RUN_START)
        return run

    def _event(self, run: dg.DagsterRun, event_type: DagsterEventType, data=None) -> None:
        self.instance.report_dagster_event(
            DagsterEvent(event_type.value, job_name=run.job_name, event_specific_data=data),
            run_id=run.run_id,
        )

    def finish_run(self, run: dg.DagsterRun, *materialized: str) -> None:
        """The run materializes `materialized` and succeeds, or fails having materialized none."""
        for key in materialized:
            data = StepMaterializationData(dg.AssetMaterialization(key))
            self._event(run, DagsterEventType.ASSET_MATERIALIZATION, data)
        ended = DagsterEventType.RUN_SUCCESS if materialized else DagsterEventType.RUN_FAILURE
        self._event(run, ended)
        assert self.instance.get_run_by_id(run.run_id).is_finished


def test_same_requests_as_eager_through_updates_runs_and_gaps() -> None:
    with dg.instance_for_test() as instance:
        twin = Twin(instance)
        assert twin.tick() == set()  # first evaluation, nothing exists
        twin.materialize("a")
        assert twin.tick() == {"b", "c"}  # c with b: one run; d waits for e
        twin.materialize("b", "c")
        assert twin.tick() == set()
        twin.materialize("e")
        assert twin.tick() == {"d"}
        twin.materialize("d")

        # b is in progress in a real run: b waits, and c and d wait for their parent b
        run = twin.start_run("b")
        twin.materialize("a")
        assert twin.tick() == set()
        assert twin.tick() == set()
        twin.finish_run(run, "b")
        assert twin.tick() == {"c", "d"}  # b's new data; b itself was handled by its run
        twin.materialize("c", "d")
        assert twin.tick() == set()

        # a run that failed without materializing: nothing pending is lost or repeated
        run = twin.start_run("c")
        twin.materialize("b")
        assert twin.tick() == {"d"}  # c in progress; d does not depend on c
        twin.materialize("d")
        twin.finish_run(run)
        assert twin.tick() == {"c"}  # still pending from b's update
        assert twin.tick() == set()  # requested once, not again each tick

        # a parent updated by a run that also targeted the child does not retrigger it
        run = twin.start_run("b", "c")
        twin.finish_run(run, "b", "c")
        assert twin.tick() == {"d"}
        twin.materialize("d")
        assert twin.tick() == set()

        # wiped: the asset is newly missing and comes back by itself, once
        instance.wipe_assets([dg.AssetKey("d")])
        assert twin.tick() == {"d"}
        assert twin.tick() == set()


def test_same_requests_as_eager_below_a_partitioned_landing_zone() -> None:
    """A staging model (unpartitioned) over a raw table with one partition per landed file."""
    files = dg.DynamicPartitionsDefinition(name="files")

    def graph(condition: dg.AutomationCondition) -> dg.Definitions:
        @dg.asset(partitions_def=files)
        def raw() -> None: ...

        @dg.asset(deps=[raw], automation_condition=condition)
        def staging() -> None: ...

        return dg.Definitions(assets=[raw, staging])

    with dg.instance_for_test() as instance:
        twin = Twin(instance)
        ours = automation_condition_from_meta({}, asset="staging", source="test")
        twin.defs = {"ours": graph(ours), "eager": graph(dg.AutomationCondition.eager())}
        assert twin.tick() == set()
        instance.add_dynamic_partitions("files", ["a.csv", "b.csv"])
        assert twin.tick() == set()  # registered, not loaded: raw is missing partitions
        for name in ("a.csv", "b.csv"):
            instance.report_runless_asset_event(dg.AssetMaterialization("raw", partition=name))
        assert twin.tick() == {"staging"}
        twin.materialize("staging")
        assert twin.tick() == set()
        instance.add_dynamic_partitions("files", ["c.csv"])
        assert twin.tick() == set()
        instance.report_runless_asset_event(dg.AssetMaterialization("raw", partition="c.csv"))
        assert twin.tick() == {"staging"}
