"""One automation sensor per code location keeps each evaluation small (and running by default,
so a landed file cascades without anyone turning anything on)."""

import dagster as dg


def automation_sensor(
    location: str, interval_seconds: int = 10
) -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        f"{location}_automation",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=interval_seconds,
        description=f"Evaluates the automation conditions of the {location} assets.",
    )
