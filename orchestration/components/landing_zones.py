"""The landing zones as a Dagster component: every zone YAML in a folder becomes a partitioned
raw asset, its job and its sensor (orchestration.factories.landing_zones builds them)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from landing.zones import ZONES_DIR, ZoneSpec, load_zones
from orchestration.components.yaml_errors import YamlConfigError, read_yaml, validate
from orchestration.factories.landing_zones import build_zone_assets, build_zone_job, zone_partitions
from orchestration.settings import PROJECT_ROOT
from sensors.landing import build_landing_sensor


def check_zone_files(zones_dir: Path) -> None:
    """Schema-check every zone file, failing with file, line and reason."""
    for path in sorted(zones_dir.glob("*.yaml")):
        text, data = read_yaml(path)
        if not isinstance(data, dict):
            raise YamlConfigError(f"{path}:1: a zone file must be a mapping")
        validate(ZoneSpec, data, path, text)


class LandingZonesComponent(dg.Component, dg.Model, dg.Resolvable):
    """Landing zones declared one per YAML file (schema: landing.zones.ZoneSpec)."""

    zones_dir: str = str(ZONES_DIR.relative_to(PROJECT_ROOT))

    def zones(self) -> list[ZoneSpec]:
        folder = PROJECT_ROOT / self.zones_dir
        if not folder.is_dir():
            raise YamlConfigError(f"zones_dir {self.zones_dir!r}: no folder {folder}")
        check_zone_files(folder)
        return load_zones(folder)  # cross-file rules: unique names and tables, replications

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        assets, jobs, sensors = [], [], []
        for zone in self.zones():
            job = build_zone_job(zone)
            assets.append(build_zone_assets(zone))
            jobs.append(job)
            sensors.append(build_landing_sensor(zone, job, zone_partitions(zone)))
        return dg.Definitions(assets=assets, jobs=jobs, sensors=sensors)
