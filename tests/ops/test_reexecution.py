"""Run-level recovery through the Dagster API on a real (on-disk) instance: a run whose step
exhausted its retries on one object is re-executed from failure, and the re-execution loads
only what no earlier attempt recorded — every object lands once."""

from __future__ import annotations

import dagster as dg

from landing import ledger
from orchestration.components import landing_zones as zone_component
from tests.ops.faults import fail_warehouse_writes
from tests.ops.test_batching import _orders, _tick

FLAKY_KEY = "orders/f1.csv"
calls: list[tuple[str, str]] = []  # (run, key) of every load attempt
broken = {"on": True}
phase = {"run": "first"}


def _orders_job() -> dg.JobDefinition:
    from orchestration.ingestion import build_definitions

    return build_definitions().get_job_def("ingest_orders_job")


def test_reexecution_from_failure_loads_only_the_failed_object(
    bucket, warehouse, monkeypatch, tmp_path
):
    monkeypatch.setenv("LANDFALL_BUCKET", bucket.landing.bucket)
    monkeypatch.setenv("LANDFALL_WAREHOUSE_PATH", warehouse.path)
    bucket.put({f"orders/f{i}.csv": _orders(i, 10 + i) for i in range(3)})

    def flaky(key: str) -> None:
        calls.append((phase["run"], key))
        if key == FLAKY_KEY and broken["on"]:
            raise OSError("connection reset by peer")

    fail_warehouse_writes(
        monkeypatch,
        flaky,
        lambda keys: FLAKY_KEY in keys and broken["on"],
        "connection reset by peer",
    )
    # no backoff waits in this test: the policy's shape is tested in tests/orchestration
    monkeypatch.setattr(zone_component, "retry_policy", lambda kind: dg.RetryPolicy(max_retries=1))
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        [request] = _tick(instance, bucket).run_requests
        job = dg.reconstructable(_orders_job)
        with dg.execute_job(job, instance, tags=dict(request.tags), raise_on_error=False) as first:
            assert not first.success
            first_id = first.run_id
        first_calls = [k for r, k in calls if r == "first"]
        # objects load concurrently (in any order); the step retry touched only the failed one
        assert sorted(first_calls[:3]) == ["orders/f0.csv", FLAKY_KEY, "orders/f2.csv"]
        assert first_calls[3:] == [FLAKY_KEY]
        broken["on"] = False  # the network is back
        phase["run"] = "second"
        options = dg.ReexecutionOptions.from_failure(first_id, instance)
        # the UI and the daemon's run retries copy the parent's tags (its partition range);
        # through this API the caller passes them
        with dg.execute_job(
            job, instance, tags=dict(request.tags), reexecution_options=options
        ) as second:
            assert second.success
            assert second.dagster_run.parent_run_id == first_id
            assert [k for r, k in calls if r == "second"] == [FLAKY_KEY]
            mats = second.asset_materializations_for_node("ingest_orders")
            assert sorted(m.partition for m in mats) == [f"orders/f{i}.csv" for i in range(3)]
            states = {m.partition: m.metadata["landfall/state"].value for m in mats}
            assert set(states.values()) == {"loaded"}

    with warehouse.connect(read_only=True) as con:
        entries = ledger.entries(con)
        rows = con.execute("select count(*), count(distinct order_id) from raw.orders").fetchone()
    assert [(e.object_key, e.state, e.rows) for e in entries] == [
        (f"orders/f{i}.csv", "loaded", 2) for i in range(3)
    ]
    assert rows == (6, 6)
