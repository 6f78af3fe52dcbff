"""Translation policy for integrations, decided once: asset keys, groups and automation.

dagster-dbt does not read `meta.dagster.automation_condition` itself (dagster #25866): this
translator maps it through our one vocabulary (orchestration.automation).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings

from orchestration.automation import automation_condition_from_meta


def _meta(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return (props.get("config") or {}).get("meta") or props.get("meta") or {}


class LandfallDbtTranslator(DagsterDbtTranslator):
    """Models are keyed `<layer>/<model>` (layer = the model's schema); sources take the key of
    the ingestion asset they read (`meta.dagster.asset_key`), so lineage is one graph across
    code locations."""

    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        layer = (dbt_resource_props.get("config") or {}).get("schema") or "transforms"
        return dg.AssetKey([layer, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return None
        return (dbt_resource_props.get("config") or {}).get("schema") or "transforms"

    def get_automation_condition(
        self, dbt_resource_props: Mapping[str, Any]
    ) -> dg.AutomationCondition | None:
        if dbt_resource_props["resource_type"] == "source":
            return None
        return automation_condition_from_meta(
            _meta(dbt_resource_props),
            asset="/".join(self.get_asset_key(dbt_resource_props).path),
            source=str(dbt_resource_props.get("original_file_path", "transforms")),
        )
