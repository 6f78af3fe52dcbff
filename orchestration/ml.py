"""Code location `ml`: the Snowpark models declared as folders under ml/models/ (each with its
training and scoring assets, jobs and checks, built by the SnowparkModelsComponent), plus this
location's sensors and the Snowpark resource."""

import dagster as dg

from orchestration.automation_sensors import automation_sensors
from orchestration.components.reactions import reaction_sensors
from orchestration.components.snowpark_models import SnowparkModelsComponent
from orchestration.snowpark import snowpark_resource


def build_definitions(models: SnowparkModelsComponent | None = None) -> dg.Definitions:
    """The location; `models` points at another models folder (tests)."""
    built = dg.build_defs_for_component(models or SnowparkModelsComponent())
    assets = [a for a in built.assets or [] if isinstance(a, dg.AssetsDefinition)]
    checks = list(built.asset_checks or [])
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=built.jobs,
        sensors=[*automation_sensors("ml", assets, checks), *reaction_sensors("ml")],
        executor=dg.in_process_executor,
        resources={"snowpark": snowpark_resource()},
    )


defs = build_definitions()
