"""`landfall status` as a bounded view: counts by state and the newest objects a page at a time,
`--all` for every one, and the `--json` contract of docs/cli.md."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from devstack.cli import main
from landing.bucket import LandingBucket
from landing.warehouse import DuckDBWarehouse
from orchestration.components.landing_zones import build_zone_assets
from tests.conftest import Stack
from tests.landing.helpers import ZONES, ingest, tick

HEADER = "order_id,customer_id,order_ts,amount,status\n"
FIELDS = {"key", "etag", "zone", "partition", "state", "rows", "reason", "updated_at"}


def _orders(i: int) -> bytes:
    return f"{HEADER}{i},1,2026-10-01 10:00:00,{i}.5,placed\n".encode()


@pytest.fixture(scope="module")
def landed(stack, tmp_path_factory):
    """orders: six loaded (one of them re-uploaded: one superseded), one quarantined, one whose
    run failed, one registered and not yet run (pending). Built once: the failed run waits out
    its step retries."""
    tmp_path = tmp_path_factory.mktemp("status-view")
    name = "t-status-view"
    stack.s3.create_bucket(Bucket=name)
    bucket = Stack(
        stack.settings, stack.s3, LandingBucket(**{**stack.landing.model_dump(), "bucket": name})
    )
    warehouse = DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield _land(bucket, warehouse, tmp_path, monkeypatch)


def _land(bucket, warehouse, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("LANDFALL_WAREHOUSE_PATH", warehouse.path)
    monkeypatch.setenv("LANDFALL_BUCKET", bucket.landing.bucket)
    zone = ZONES["orders"]
    bucket.put({f"orders/f{i}.csv": _orders(i) for i in range(6)} | {"orders/bad.csv": b""})
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        cursor = tick(instance, zone, bucket.landing, None).cursor
        for key in [f"orders/f{i}.csv" for i in range(6)] + ["orders/bad.csv"]:
            ingest(instance, zone, key, bucket.landing, warehouse)
        bucket.put({"orders/f0.csv": _orders(100), "orders/broken.csv": _orders(7)})
        bucket.put({"orders/later.csv": _orders(8)})
        tick(instance, zone, bucket.landing, cursor)
        ingest(instance, zone, "orders/f0.csv", bucket.landing, warehouse)
        # a warehouse that cannot be opened: the run fails, nothing is recorded
        nowhere = DuckDBWarehouse(path=str(tmp_path / "no such folder" / "w.duckdb"))
        result = dg.materialize(
            [build_zone_assets(zone)],
            partition_key="orders/broken.csv",
            instance=instance,
            resources={"landing": bucket.landing, "warehouse": nowhere},
            raise_on_error=False,
        )
        assert not result.success
    return home


def _json(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main(["status", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_contract_counts_every_state_and_pages_newest_first(landed, capsys):
    doc = _json(capsys, "--zone", "orders", "--limit", "3")
    assert set(doc) == {
        "objects",
        "counts",
        "total",
        "page",
        "ignored",
        "ignored_complete",
        "ignored_error",
    }
    assert doc["counts"] == {
        "pending": 1,
        "loaded": 6,
        "quarantined": 1,
        "failed": 1,
        "superseded": 1,
    }
    assert doc["total"] == 10
    assert doc["page"] == {"offset": 0, "limit": 3, "returned": 3, "next_offset": 3}
    assert all(set(o) == FIELDS for o in doc["objects"])
    # what no run has recorded comes first (newest registered first), then the ledger newest
    # first: the re-upload of f0 was recorded last
    first = [(o["key"], o["state"]) for o in doc["objects"]]
    assert first[:2] == [("orders/later.csv", "pending"), ("orders/broken.csv", "failed")] or (
        first[:2] == [("orders/broken.csv", "failed"), ("orders/later.csv", "pending")]
    )
    assert first[2] == ("orders/f0.csv", "loaded")
    unrecorded = {o["key"]: o for o in doc["objects"][:2]}
    assert unrecorded["orders/later.csv"]["etag"] is None
    assert unrecorded["orders/later.csv"]["rows"] is None
    assert "run failed" in unrecorded["orders/broken.csv"]["reason"]
    loaded = doc["objects"][2]
    assert loaded["rows"] == 1 and loaded["partition"] == "orders/f0.csv"
    assert loaded["etag"] and loaded["updated_at"]


def test_pages_walked_by_next_offset_are_the_all_listing(landed, capsys):
    everything = _json(capsys, "--all")
    assert everything["page"]["limit"] is None and everything["page"]["next_offset"] is None
    assert len(everything["objects"]) == everything["total"] == 10
    walked, offset = [], 0
    while offset is not None:
        doc = _json(capsys, "--limit", "4", "--offset", str(offset))
        walked += doc["objects"]
        offset = doc["page"]["next_offset"]
    assert walked == everything["objects"]
    states = [o["state"] for o in everything["objects"]]
    assert sorted(states) == sorted(
        ["pending", "failed", "superseded", "quarantined"] + ["loaded"] * 6
    )
    # each version of the re-uploaded key is listed once, in its own state
    f0 = [(o["state"], o["rows"]) for o in everything["objects"] if o["key"] == "orders/f0.csv"]
    assert sorted(f0) == [("loaded", 1), ("superseded", 0)]


def test_text_view_is_bounded_and_names_the_next_page(landed, capsys):
    capsys.readouterr()
    assert main(["status", "--limit", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    listed = [x for x in out if x.startswith("orders ")]
    assert len(listed) == 2
    assert "pending 1, loaded 6, quarantined 1, failed 1, superseded 1" in out
    assert (
        "objects 1-2 of 10, newest first; next page: landfall status --offset 2 "
        "(--all lists every object)"
    ) in out
    assert main(["status", "--all"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len([x for x in out if x.startswith("orders ")]) == 10
    assert not [x for x in out if "next page" in x]


def test_an_unknown_zone_or_a_bad_page_is_refused(landed, capsys):
    assert main(["status", "--zone", "nope"]) == 2
    assert "no zone 'nope'; zones: customers, events, orders" in capsys.readouterr().err
    assert main(["status", "--limit", "0"]) == 2
    assert "--limit must be at least 1" in capsys.readouterr().err


def test_another_zone_lists_none_of_these(landed, capsys):
    doc = _json(capsys, "--zone", "customers")
    assert doc["objects"] == [] and doc["total"] == 0
    assert doc["page"]["next_offset"] is None
