"""Each vocabulary name, evaluated by Dagster's automation evaluation under a controlled clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from orchestration.automation import automation_condition_from_meta

DAY = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday


def _meta(name: str, **config: str) -> dict:
    meta = {"automation_condition": name}
    if config:
        meta["automation_condition_config"] = config
    return {"dagster": meta}


def _graph(name: str, **config: str) -> list[dg.AssetsDefinition]:
    @dg.asset
    def upstream() -> None: ...

    @dg.asset(
        deps=[upstream],
        automation_condition=automation_condition_from_meta(
            _meta(name, **config), asset="downstream", source="test"
        ),
    )
    def downstream() -> None: ...

    return [upstream, downstream]


class Clock:
    """Evaluates the graph repeatedly, carrying the cursor as the daemon does."""

    def __init__(self, assets: list[dg.AssetsDefinition], instance: dg.DagsterInstance) -> None:
        self.assets, self.instance, self.cursor = assets, instance, None

    def requested(self, at: datetime) -> int:
        result = dg.evaluate_automation_conditions(
            defs=self.assets, instance=self.instance, cursor=self.cursor, evaluation_time=at
        )
        self.cursor = result.cursor
        return result.get_num_requested(dg.AssetKey("downstream"))

    def materialize(self, key: str) -> None:
        self.instance.report_runless_asset_event(dg.AssetMaterialization(key))


def test_on_cron_no_deps_fires_once_per_tick_whatever_the_upstreams() -> None:
    with dg.instance_for_test() as instance:
        clock = Clock(
            _graph("on_cron_no_deps", cron_schedule="@daily", cron_timezone="utc"), instance
        )
        assert clock.requested(DAY + timedelta(hours=1)) == 0  # first evaluation: no tick yet
        assert clock.requested(DAY + timedelta(hours=23)) == 0
        assert clock.requested(DAY + timedelta(days=1, minutes=1)) == 1  # upstream never ran
        clock.materialize("downstream")
        assert clock.requested(DAY + timedelta(days=1, hours=2)) == 0  # once per tick
        assert clock.requested(DAY + timedelta(days=2, minutes=1)) == 1


def test_on_cron_with_deps_waits_for_upstreams_updated_since_the_tick() -> None:
    with dg.instance_for_test() as instance:
        clock = Clock(_graph("on_cron_with_deps", cron_schedule="0 6 * * *"), instance)
        clock.requested(DAY)
        assert clock.requested(DAY + timedelta(hours=6, minutes=1)) == 0  # upstream not updated
        clock.materialize("upstream")
        assert clock.requested(DAY + timedelta(hours=7)) == 1
        clock.materialize("downstream")
        clock.materialize("upstream")  # a second update within the same cron window
        assert clock.requested(DAY + timedelta(hours=8)) == 0


def test_on_upstream_change_fires_per_update_and_not_while_upstream_missing() -> None:
    with dg.instance_for_test() as instance:
        clock = Clock(_graph("on_upstream_change"), instance)
        assert clock.requested(DAY) == 0  # upstream missing
        clock.materialize("upstream")
        assert clock.requested(DAY + timedelta(minutes=1)) == 1
        clock.materialize("downstream")
        assert clock.requested(DAY + timedelta(minutes=2)) == 0
        clock.materialize("upstream")
        assert clock.requested(DAY + timedelta(minutes=3)) == 1


def test_manual_only_never_fires() -> None:
    with dg.instance_for_test() as instance:
        clock = Clock(_graph("manual_only"), instance)
        clock.materialize("upstream")
        assert clock.requested(DAY) == 0
        assert clock.requested(DAY + timedelta(days=1)) == 0


def test_no_stall_after_a_definitions_reload() -> None:
    """dagster #33656: conditions kept evaluating after a reload (new definitions, same cursor)."""
    with dg.instance_for_test() as instance:
        clock = Clock(_graph("on_upstream_change"), instance)
        assert clock.requested(DAY) == 0
        clock.materialize("upstream")
        assert clock.requested(DAY + timedelta(seconds=30)) == 1
        clock.materialize("downstream")
        clock.assets = _graph("on_upstream_change")  # the code location reloaded
        assert clock.requested(DAY + timedelta(minutes=1)) == 0
        clock.materialize("upstream")
        assert clock.requested(DAY + timedelta(minutes=2)) == 1


def test_a_cron_condition_shows_its_schedule_and_timezone_and_ticks_in_that_timezone() -> None:
    """Cron conditions are not Dagster schedules: the UI shows them as the asset's automation
    condition, by label. The label carries the cron and the IANA zone, and the tick follows it."""
    assets = _graph("on_cron_with_deps", cron_schedule="0 6 * * *", cron_timezone="europe/berlin")
    condition = assets[1].specs_by_key[dg.AssetKey("downstream")].automation_condition
    assert condition.get_label() == "on_cron_with_deps(0 6 * * *, Europe/Berlin)"
    with dg.instance_for_test() as instance:
        clock = Clock(assets, instance)
        clock.requested(DAY)
        clock.materialize("upstream")
        # 06:00 in Berlin is 05:00 UTC in November (CET)
        assert clock.requested(DAY + timedelta(hours=4, minutes=59)) == 0
        clock.materialize("upstream")
        assert clock.requested(DAY + timedelta(hours=5, minutes=1)) == 1
