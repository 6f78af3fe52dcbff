"""Code versions on every asset kind, data versions on raw materializations, and a code change
that shows as one: the stale-status resolver the UI uses reports the partition as changed."""

from __future__ import annotations

import hashlib
import json

import dagster as dg
import pytest
from dagster._core.definitions.data_version import StaleCauseCategory, StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver

from landing.samples import sample_files
from orchestration.components.landing_zones import build_zone_assets, zone_code_version
from orchestration.dbt_project import manifest_path
from tests.landing.helpers import ZONES, ingest, tick

LOCATIONS = ("ingestion", "transformation", "ml")


def _graph(location: str):
    return __import__(f"orchestration.{location}", fromlist=["defs"]).defs.resolve_asset_graph()


@pytest.mark.parametrize("location", LOCATIONS)
def test_every_materializable_asset_has_a_code_version(location: str) -> None:
    graph = _graph(location)
    missing = [
        key.to_user_string()
        for key in graph.materializable_asset_keys
        if not graph.get(key).code_version
    ]
    assert not missing, f"{location}: assets without a code version: {missing}"


def test_dbt_models_are_versioned_by_their_sql() -> None:
    # dagster-dbt hashes the model's raw SQL (sha1), so an edit to the model changes it.
    manifest = json.loads(manifest_path().read_text(encoding="utf-8"))
    graph = _graph("transformation")
    node = next(n for n in manifest["nodes"].values() if n["name"] == "customer_order_features")
    key = dg.AssetKey(["marts", "customer_order_features"])
    expected = hashlib.sha1(node["raw_code"].encode("utf-8")).hexdigest()
    assert graph.get(key).code_version == expected


def test_zone_version_follows_its_contract_and_replication() -> None:
    zone = ZONES["orders"]
    widened = zone.model_copy(update={"max_file_bytes": zone.max_file_bytes + 1})
    assert zone_code_version(widened) != zone_code_version(zone)
    assert zone_code_version(zone.model_copy()) == zone_code_version(zone)


def test_a_changed_zone_shows_its_loaded_partition_as_code_changed(bucket, warehouse) -> None:
    zone = ZONES["customers"]
    files = {k: v for k, v in sample_files(customers=10, orders=1, events=1).items()}
    bucket.put({k: v for k, v in files.items() if k.startswith(zone.prefix)})
    key = dg.AssetKey(zone.asset_key_path)
    with dg.instance_for_test() as instance:
        result = tick(instance, zone, bucket.landing, None)
        partition = result.run_requests[0].partition_key
        ingest(instance, zone, partition, bucket.landing, warehouse)

        same = get_stale_status_resolver(instance, [build_zone_assets(zone)])
        assert same.get_status(key, partition) == StaleStatus.FRESH

        changed_zone = zone.model_copy(update={"max_file_bytes": zone.max_file_bytes + 1})
        changed = get_stale_status_resolver(instance, [build_zone_assets(changed_zone)])
        assert changed.get_status(key, partition) == StaleStatus.STALE
        causes = changed.get_stale_causes(key, partition)
        assert [c.category for c in causes] == [StaleCauseCategory.CODE], causes

        record = instance.get_latest_materialization_event(key)
        data_version = record.asset_materialization.tags.get("dagster/data_version", "")
        assert data_version.endswith(":ok") and len(data_version) > len(":ok")
