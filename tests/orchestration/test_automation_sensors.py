"""Automation sensors run in the code server (our condition is Python) within Dagster's limit
of 500 assets and checks per such sensor."""

from __future__ import annotations

import dagster as dg
from dagster._core.definitions.sensor_definition import SensorType

from orchestration.automation_sensors import automation_sensors


def _models(count: int, checks_each: int) -> dg.AssetsDefinition:
    specs = [dg.AssetSpec(["staging", f"m{i:03d}"]) for i in range(count)]
    check_specs = [
        dg.AssetCheckSpec(f"c{j}", asset=spec.key) for spec in specs for j in range(checks_each)
    ]

    @dg.multi_asset(specs=specs, check_specs=check_specs)
    def models():  # noqa: ANN202 - never executed here
        ...

    return models


def test_a_small_location_has_one_sensor_evaluated_in_the_code_server() -> None:
    (sensor,) = automation_sensors("ml", [_models(3, 1)])
    assert sensor.name == "ml_automation"
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.sensor_type == SensorType.AUTOMATION  # evaluated in the code server


def test_a_large_location_is_sliced_within_the_limit_counting_checks() -> None:
    models = _models(501, 1)  # 501 assets + 501 checks: three slices of at most 500
    sensors = automation_sensors("transformation", [models])
    assert [s.name for s in sensors] == [f"transformation_automation_{i}" for i in (1, 2, 3)]
    defs = dg.Definitions(assets=[models], sensors=sensors)
    graph = defs.resolve_asset_graph()
    covered: list[dg.AssetKey] = []
    for sensor in sensors:
        keys = sensor.asset_selection.resolve(graph)
        checks = sensor.asset_selection.resolve_checks(graph)
        assert len(keys) + len(checks) <= 500, sensor.name
        covered += keys
    assert sorted(covered) == sorted(models.keys)  # every asset in exactly one sensor
