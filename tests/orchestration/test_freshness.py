"""Freshness from YAML as Dagster FreshnessPolicies, judged by Dagster's own freshness daemon and
notified by our sensor.

The daemon's evaluation is run the way Dagster's own tests run it (FreshnessDaemon.run_iteration
over a workspace holding the location), under Dagster's frozen clock; it writes the
FRESHNESS_STATE_CHANGE events the notification sensor reads. Nothing here fakes a state."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.test_utils import freeze_time

from common.settings import Settings
from landing.zones import FreshnessSpec, parse_lag
from orchestration import ingestion, transformation
from orchestration.freshness import dbt_freshness
from orchestration.source_freshness import latest_freshness
from orchestration.translation import LandfallDbtTranslator
from tests.freshness_daemon import daemon_workspace, evaluate_freshness
from tests.landing.helpers import ZONES, ingest
from tests.orchestration import freshness_start_location

RAW_ORDERS = dg.AssetKey(["raw", "orders"])
MART = dg.AssetKey(["marts", "customer_order_features"])
ORDERS_CSV = b"order_id,customer_id,order_ts,amount,status\n1,10,2024-05-01 10:00:00,10.50,placed\n"


def test_lags_parse_and_a_declaration_is_checked() -> None:
    assert parse_lag("26h") == timedelta(hours=26)
    assert parse_lag("90m") == timedelta(minutes=90)
    assert parse_lag("2d") == timedelta(days=2)
    with pytest.raises(ValueError, match="invalid lag 'soon'"):
        parse_lag("soon")
    # as a zone file writes it: YAML reads the start as a date
    spec = FreshnessSpec.model_validate(
        yaml.safe_load("max_lag: 26h\nwarn_after: 20h\nstart: 2026-12-01")
    )
    assert spec.start == datetime(2026, 12, 1, tzinfo=UTC)  # a date is midnight UTC
    with pytest.raises(ValueError, match="warn_after 30h must be shorter than max_lag"):
        FreshnessSpec(max_lag="26h", warn_after="30h")
    with pytest.raises(ValueError, match="shorter than Dagster's minimum of one minute"):
        FreshnessSpec(max_lag="30s")


def _policies(defs: dg.Definitions) -> dict[dg.AssetKey, dg.FreshnessPolicy]:
    graph = defs.resolve_asset_graph()
    return {
        key: graph.get(key).freshness_policy
        for key in graph.materializable_asset_keys
        if graph.get(key).freshness_policy
    }


def test_each_declared_asset_has_one_policy_and_there_are_no_freshness_checks() -> None:
    raw, marts = _policies(ingestion.defs), _policies(transformation.defs)
    declared = {
        dg.AssetKey(key): zone.freshness
        for zone in ZONES.values()
        if zone.freshness
        for key in zone.table_keys
    }
    assert set(raw) == set(declared) and RAW_ORDERS in raw
    for key, spec in declared.items():
        assert raw[key] == dg.FreshnessPolicy.time_window(
            fail_window=spec.fail_lag, warn_window=spec.warn_lag
        )
    assert marts == {MART: dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=26))}
    # the policy is the one mechanism: no freshness check and no source-freshness run remain
    for defs in (ingestion.defs, transformation.defs):
        checks = [k for c in defs.asset_checks or [] for k in c.check_keys]
        checks += [k for a in defs.assets or [] for k in getattr(a, "check_keys", [])]
        assert not [k for k in checks if "freshness" in k.name], checks


def test_an_invalid_dbt_freshness_fails_naming_the_file_and_the_asset() -> None:
    manifest = {
        "nodes": {
            "model.landfall.m": {
                "resource_type": "model",
                "name": "m",
                "original_file_path": "models/marts/_marts__models.yml",
                "config": {"schema": "marts", "meta": {"dagster": {"freshness": {"lag": "2h"}}}},
            }
        }
    }
    with pytest.raises(ValueError) as error:
        dbt_freshness(manifest, LandfallDbtTranslator())
    message = str(error.value)
    assert message.startswith(
        "models/marts/_marts__models.yml: asset marts/m: meta.dagster.freshness"
    )
    assert "max_lag: Field required" in message and "lag: Extra inputs are not permitted" in message


class Clock:
    """Dagster's freshness daemon and our sensor, ticked at a frozen moment."""

    def __init__(self, instance: dg.DagsterInstance, workspace, sensor: dg.SensorDefinition):
        self.instance, self.workspace, self.sensor = instance, workspace, sensor
        self.cursor: str | None = None

    def tick(self, at: datetime) -> None:
        with freeze_time(at):
            evaluate_freshness(self.workspace)
            context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor)
            self.sensor(context)
            self.cursor = context.cursor

    def state(self, key: dg.AssetKey) -> FreshnessState:
        return self.instance.get_freshness_state_records([key])[key].freshness_state


class Sink:
    """The local JSONL notification sink, from where it stood when the test began."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.start = len(path.read_text().splitlines()) if path.exists() else 0

    def read(self) -> list[dict]:
        lines = self.path.read_text().splitlines()[self.start :] if self.path.exists() else []
        return [json.loads(line) for line in lines]


@pytest.fixture
def sink(landfall_env: Settings, monkeypatch: pytest.MonkeyPatch) -> Sink:
    monkeypatch.delenv("LANDFALL_NOTIFY_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("LANDFALL_NOTIFY_SMTP_HOST", raising=False)
    return Sink(Path(landfall_env.state_dir) / "notifications.jsonl")


def _sensor(defs: dg.Definitions, name: str) -> dg.SensorDefinition:
    return next(s for s in defs.sensors or [] if s.name == name)


def _freshness(notes: list[dict]) -> list[tuple[str, str]]:
    return [(n["freshness"], n["state"]) for n in notes if "freshness" in n]


def test_a_stale_raw_table_is_notified_once_and_nothing_before_its_first_landing(
    bucket, warehouse, sink
) -> None:
    """The ingestion location as deployed: on an empty stack nothing is late; a loaded zone goes
    stale max_lag after its load and is notified once; a zone that never loads is notified once
    its first landing is overdue."""
    sensor = _sensor(ingestion.defs, "notify_on_ingestion_freshness_failure")
    orders_lag = ZONES["orders"].freshness.fail_lag
    customers_lag = ZONES["customers"].freshness.fail_lag
    assert customers_lag > orders_lag  # the sequence below relies on it
    bucket.put({"orders/first.csv": ORDERS_CSV})
    t0 = datetime.now(UTC).replace(microsecond=0)
    with (
        dg.instance_for_test() as instance,
        daemon_workspace(instance, "orchestration.ingestion") as ws,
    ):
        clock = Clock(instance, ws, sensor)
        clock.tick(t0)  # start-up, nothing landed
        assert clock.state(RAW_ORDERS) == FreshnessState.UNKNOWN  # not FAIL: never materialized
        assert _freshness(sink.read()) == []

        loaded_at = t0 + timedelta(minutes=30)
        with freeze_time(loaded_at):
            instance.add_dynamic_partitions(ZONES["orders"].partitions_name, ["orders/first.csv"])
            ingest(instance, ZONES["orders"], "orders/first.csv", bucket.landing, warehouse)
        clock.tick(loaded_at + timedelta(minutes=1))
        assert clock.state(RAW_ORDERS) == FreshnessState.PASS

        clock.tick(loaded_at + orders_lag - timedelta(minutes=1))
        assert clock.state(RAW_ORDERS) == FreshnessState.PASS
        assert _freshness(sink.read()) == []

        stale_at = loaded_at + orders_lag + timedelta(minutes=1)
        clock.tick(stale_at)
        clock.tick(stale_at + timedelta(minutes=1))  # still stale: not notified twice
        assert clock.state(RAW_ORDERS) == FreshnessState.FAIL
        assert _freshness(sink.read()) == [("raw/orders", "FAIL")]
        [stale] = [n for n in sink.read() if "freshness" in n]
        assert "last materialized 26h01m ago" in stale["description"]
        assert stale["ui_link"].endswith("/assets/raw/orders")

        # customers never landed: overdue once max_lag has passed since the daemon first saw it
        clock.tick(t0 + customers_lag - timedelta(minutes=1))
        assert _freshness(sink.read()) == [("raw/orders", "FAIL")]
        clock.tick(t0 + customers_lag + timedelta(minutes=1))
        assert clock.state(dg.AssetKey(["raw", "customers"])) == FreshnessState.UNKNOWN
        overdue = _freshness(sink.read())[1:]
        assert sorted(overdue) == [
            ("raw/customers", "UNKNOWN"),
            ("raw/events", "UNKNOWN"),
            ("raw/events__items", "UNKNOWN"),
        ]

        # `landfall status` reads the same states back
        rows = {r.asset: r for r in latest_freshness(instance, [RAW_ORDERS])}
        assert rows["raw/orders"].state == "fail" and rows["raw/orders"].max_loaded_at


def test_an_explicit_start_holds_failures_back_until_the_first_expected_landing(sink) -> None:
    module = freshness_start_location
    sensor = _sensor(module.defs, "notify_on_test_freshness_failure")
    from_start = dg.AssetKey(["raw", "from_start"])
    from_registration = dg.AssetKey(["raw", "from_registration"])
    lag = timedelta(hours=26)
    t0 = module.START - timedelta(days=10)
    with dg.instance_for_test() as instance, daemon_workspace(instance, module.__name__) as ws:
        clock = Clock(instance, ws, sensor)
        clock.tick(t0)
        with freeze_time(t0 + timedelta(hours=1)):
            instance.report_runless_asset_event(dg.AssetMaterialization(from_start))
            instance.report_runless_asset_event(dg.AssetMaterialization(from_registration))
        clock.tick(t0 + timedelta(hours=1, minutes=1))
        assert clock.state(from_start) == FreshnessState.PASS

        # both stale a day later: the one without a start is notified, the other waits
        clock.tick(t0 + timedelta(hours=1) + lag + timedelta(minutes=1))
        assert clock.state(from_start) == FreshnessState.FAIL
        assert _freshness(sink.read()) == [("raw/from_registration", "FAIL")]
        clock.tick(module.START + lag - timedelta(minutes=1))
        assert _freshness(sink.read()) == [("raw/from_registration", "FAIL")]
        # still stale when its first landing was due: now it counts, once
        clock.tick(module.START + lag + timedelta(minutes=1))
        clock.tick(module.START + lag + timedelta(minutes=2))
        assert _freshness(sink.read()) == [
            ("raw/from_registration", "FAIL"),
            ("raw/from_start", "FAIL"),
        ]

        # it recovers, then goes stale again: a new failure, notified again
        reloaded = module.START + lag + timedelta(hours=1)
        with freeze_time(reloaded):
            instance.report_runless_asset_event(dg.AssetMaterialization(from_start))
        clock.tick(reloaded + timedelta(minutes=1))
        assert clock.state(from_start) == FreshnessState.PASS
        clock.tick(reloaded + lag + timedelta(minutes=1))
        assert _freshness(sink.read())[-1] == ("raw/from_start", "FAIL")
        assert len(_freshness(sink.read())) == 3
