"""The declarative-automation pitfalls known from Dagster's tracker, pinned under a controlled
clock with partitioned downstreams: #24474 (only the latest time window), #34094 (partitions
whose parents are incomplete or do not exist) and #33656 (no stall after a reload)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from orchestration.automation import automation_condition_from_meta

NOV_2 = datetime(2026, 11, 2, tzinfo=UTC)


def _condition(name: str = "on_upstream_change", **config: str) -> dg.AutomationCondition:
    meta: dict = {"automation_condition": name}
    if config:
        meta["automation_condition_config"] = config
    condition = automation_condition_from_meta({"dagster": meta}, asset="test", source="test")
    assert condition is not None
    return condition


def _pair(upstream_partitions, downstream_partitions, condition=None) -> list:
    @dg.asset(partitions_def=upstream_partitions)
    def upstream() -> None: ...

    @dg.asset(
        partitions_def=downstream_partitions,
        deps=[upstream],
        automation_condition=condition or _condition(),
    )
    def downstream() -> None: ...

    return [upstream, downstream]


class Clock:
    """Evaluates repeatedly at given times, carrying the cursor as the daemon does."""

    def __init__(self, assets: list, instance: dg.DagsterInstance) -> None:
        self.assets, self.instance, self.cursor = assets, instance, None

    def requested(self, at: datetime, key: str = "downstream") -> set[str]:
        result = dg.evaluate_automation_conditions(
            defs=self.assets, instance=self.instance, cursor=self.cursor, evaluation_time=at
        )
        self.cursor = result.cursor
        asset_key = dg.AssetKey(key)
        if not result.get_num_requested(asset_key):
            return set()
        partitions = result.get_requested_partitions(asset_key)
        return {p for p in partitions if p is not None} or {"<unpartitioned>"}

    def materialize(self, key: str, partition: str | None = None) -> None:
        self.instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))


def test_a_late_file_for_an_old_day_cascades_to_that_day_alone() -> None:
    """#24474: eager() only looks at the latest time window; our on_upstream_change refreshes
    the partition that changed, whichever day it is, and nothing else."""
    daily = dg.DailyPartitionsDefinition(start_date="2026-10-01")
    with dg.instance_for_test() as instance:
        clock = Clock(_pair(daily, daily), instance)
        assert clock.requested(NOV_2 + timedelta(hours=1)) == set()
        clock.materialize("upstream", "2026-10-15")  # a late correction for an old day
        assert clock.requested(NOV_2 + timedelta(hours=2)) == {"2026-10-15"}
        clock.materialize("downstream", "2026-10-15")
        clock.materialize("upstream", "2026-11-01")
        assert clock.requested(NOV_2 + timedelta(hours=3)) == {"2026-11-01"}
        clock.materialize("downstream", "2026-11-01")
        # a new day begins with nothing landed: no storm over the historical partitions
        assert clock.requested(NOV_2 + timedelta(days=1, hours=1)) == set()


def test_stock_eager_misses_the_old_day() -> None:
    """The behaviour our condition departs from, so the test above proves a difference."""
    daily = dg.DailyPartitionsDefinition(start_date="2026-10-01")
    with dg.instance_for_test() as instance:
        clock = Clock(_pair(daily, daily, dg.AutomationCondition.eager()), instance)
        clock.requested(NOV_2 + timedelta(hours=1))
        clock.materialize("upstream", "2026-10-15")
        assert clock.requested(NOV_2 + timedelta(hours=2)) == set()


def test_a_new_file_partition_cascades_alone_and_a_reupload_reruns_only_its_own() -> None:
    """Dynamic (per landed file) partitions, as the landing zones have."""
    files = dg.DynamicPartitionsDefinition(name="files")
    with dg.instance_for_test() as instance:
        clock = Clock(_pair(files, files), instance)
        clock.requested(NOV_2)
        instance.add_dynamic_partitions("files", ["a.csv", "b.csv"])
        for name in ("a.csv", "b.csv"):
            clock.materialize("upstream", name)
        assert clock.requested(NOV_2 + timedelta(minutes=1)) == {"a.csv", "b.csv"}
        for name in ("a.csv", "b.csv"):
            clock.materialize("downstream", name)
        assert clock.requested(NOV_2 + timedelta(minutes=2)) == set()

        instance.add_dynamic_partitions("files", ["c.csv"])
        clock.materialize("upstream", "c.csv")
        assert clock.requested(NOV_2 + timedelta(minutes=3)) == {"c.csv"}
        clock.materialize("downstream", "c.csv")
        clock.materialize("upstream", "a.csv")  # a.csv re-uploaded with new content
        assert clock.requested(NOV_2 + timedelta(minutes=4)) == {"a.csv"}


def test_a_partition_waits_while_its_parent_partition_is_registered_but_not_loaded() -> None:
    """#34094, incomplete parents: the sensor registered the file, its load has not finished."""
    files = dg.DynamicPartitionsDefinition(name="files")
    with dg.instance_for_test() as instance:
        clock = Clock(_pair(files, files), instance)
        clock.requested(NOV_2)
        instance.add_dynamic_partitions("files", ["a.csv"])
        assert clock.requested(NOV_2 + timedelta(minutes=1)) == set()
        assert clock.requested(NOV_2 + timedelta(minutes=2)) == set()
        clock.materialize("upstream", "a.csv")
        assert clock.requested(NOV_2 + timedelta(minutes=3)) == {"a.csv"}


def test_a_partition_whose_parent_partition_does_not_exist_is_not_requested() -> None:
    """#34094: an hourly downstream below an hourly upstream that ends at 10:00. Stock eager()
    requests 10:00 and 11:00 with no parent partition to read; ours waits."""
    upstream_hours = dg.HourlyPartitionsDefinition(
        start_date="2026-11-02-00:00", end_date="2026-11-02-10:00"
    )
    downstream_hours = dg.HourlyPartitionsDefinition(start_date="2026-11-02-00:00")
    for condition, expected in (
        (_condition(), [{"2026-11-02-09:00"}, set(), set()]),
        (
            dg.AutomationCondition.eager(),
            [{"2026-11-02-09:00"}, {"2026-11-02-10:00"}, {"2026-11-02-11:00"}],
        ),
    ):
        with dg.instance_for_test() as instance:
            clock = Clock(_pair(upstream_hours, downstream_hours, condition), instance)
            clock.requested(NOV_2 + timedelta(hours=9))
            for hour in range(10):
                clock.materialize("upstream", f"2026-11-02-{hour:02d}:00")
            for hour in range(9):
                clock.materialize("downstream", f"2026-11-02-{hour:02d}:00")
            seen = [
                clock.requested(NOV_2 + timedelta(hours=hour, minutes=1)) for hour in (10, 11, 12)
            ]
            assert seen == expected, condition.get_label()


def test_no_stall_after_a_reload_that_changes_the_graph() -> None:
    """#33656's shape: parent on a cron, child on upstream change; the code location reloads
    with a changed graph (a dbt manifest change adds a model). The child keeps following."""

    def graph(with_new_model: bool) -> list:
        @dg.asset(automation_condition=_condition("on_cron_no_deps", cron_schedule="@hourly"))
        def parent() -> None: ...

        @dg.asset(deps=[parent], automation_condition=_condition())
        def child() -> None: ...

        assets = [parent, child]
        if with_new_model:

            @dg.asset(deps=[child], automation_condition=_condition())
            def new_model() -> None: ...

            assets.append(new_model)
        return assets

    def tick(clock: Clock, at: datetime) -> set[str]:
        result = dg.evaluate_automation_conditions(
            defs=clock.assets, instance=clock.instance, cursor=clock.cursor, evaluation_time=at
        )
        clock.cursor = result.cursor
        requested = {
            a.key.to_user_string() for a in clock.assets if result.get_num_requested(a.key)
        }
        for key in requested:  # the run the daemon would launch succeeds
            clock.materialize(key)
        return requested

    with dg.instance_for_test() as instance:
        clock = Clock(graph(False), instance)
        assert tick(clock, NOV_2 + timedelta(minutes=30)) == set()
        # the cron tick requests the parent, and the child with it (one run)
        assert tick(clock, NOV_2 + timedelta(hours=1, minutes=1)) == {"parent", "child"}
        assert tick(clock, NOV_2 + timedelta(hours=1, minutes=2)) == set()

        clock.assets = graph(True)  # reloaded: same cursor, new definitions
        assert tick(clock, NOV_2 + timedelta(hours=1, minutes=3)) <= {"new_model"}
        for hour in (2, 3):
            assert tick(clock, NOV_2 + timedelta(hours=hour, minutes=1)) == {
                "parent",
                "child",
                "new_model",
            }
            assert tick(clock, NOV_2 + timedelta(hours=hour, minutes=2)) == set()
