"""The landing path with LANDFALL_ENV=prod's warehouse: Sling stages into Snowflake, the merge
and the ledger run through dagster-snowflake's SnowflakeResource, dlt through its sqlalchemy
destination. Against fakesnow's server (Snowflake's HTTP protocol on 127.0.0.1), the same code
and settings an account gets, only the endpoint differs. One server per module; each test
starts from an empty warehouse."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest

from devstack import snowflake_stand_in
from devstack.local_stack import free_port
from landing import ingest as landing_ingest
from landing import ledger, raw_load
from landing.snowflake_warehouse import SnowflakeWarehouse
from orchestration.components import landing_zones as zone_component
from orchestration.resources import warehouse as warehouse_resource
from tests.landing.helpers import (
    FILE_CLASS_LIMIT,
    ZONES,
    assert_quarantined_with_reasons,
    bad_file_classes,
    good_file_classes,
    orders_csv,
    tick,
)
from tests.ops.faults import fail_warehouse_writes
from tests.ops.test_batching import _event

pytestmark = pytest.mark.timeout(300)
HEADER = "order_id,customer_id,order_ts,amount,status\n"


def _orders(*ids: int) -> bytes:
    return (HEADER + "".join(f"{i},{i},2026-10-01 10:00:00,{i}.25,placed\n" for i in ids)).encode()


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnowflakeWarehouse]:
    port = free_port()
    log = tmp_path_factory.mktemp("fakesnow") / "server.log"
    server = snowflake_stand_in.start_fakesnow(port, log)
    try:
        with pytest.MonkeyPatch.context() as env:
            for name, value in snowflake_stand_in.snowflake_environment(port).items():
                env.setenv(name, value)
            env.setenv("LANDFALL_ENV", "prod")
            configured = warehouse_resource()
            assert isinstance(configured, SnowflakeWarehouse)
            # EnvVar credentials resolve when Dagster initialises the resource
            with dg.build_resources({"warehouse": configured}) as resources:
                warehouse = resources.warehouse
                with warehouse.connect() as con:
                    con.execute(f"CREATE DATABASE IF NOT EXISTS {snowflake_stand_in.DATABASE}")
                yield warehouse
    finally:
        snowflake_stand_in.stop_fakesnow(server)


@pytest.fixture
def snowflake(stand_in: SnowflakeWarehouse) -> SnowflakeWarehouse:
    """The module's stand-in, emptied: no raw tables, no ledger, no staging left over."""
    with stand_in.connect() as con:
        for schema in ("RAW", "LANDFALL", "_LANDFALL_STAGE"):
            con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return stand_in


def _ingest_all(
    instance, bucket, warehouse, cursor=None, zone_name="orders", zone=None, runs="per_file"
) -> dg.SensorResult:
    """One sensor tick and its runs, executed the way the daemon launches them (a per-tick
    run's tags carry its partition range)."""
    zone = zone or ZONES[zone_name]
    result = tick(instance, zone, bucket.landing, cursor, runs=runs)
    for request in result.run_requests:
        run = dg.materialize(
            [zone_component.build_zone_assets(zone)],
            partition_key=request.partition_key,
            tags=dict(request.tags),
            instance=instance,
            resources={"landing": bucket.landing, "warehouse": warehouse},
            raise_on_error=False,
        )
        assert run.success, [e.message for e in run.all_events if e.is_failure]
    return result


def _entries(warehouse, zone="orders") -> dict[str, ledger.LedgerEntry]:
    """The current ledger entry of each key (superseded versions left out)."""
    with warehouse.connect() as con:
        return {e.object_key: e for e in ledger.entries(con, zone) if e.state != "superseded"}


def _rows_by_file(warehouse) -> dict[str, int]:
    with warehouse.connect() as con:
        rows = con.execute(
            'SELECT "_LANDFALL_FILE", count(*) FROM "RAW"."ORDERS" GROUP BY 1'
        ).fetchall()
    return dict(rows)


def test_files_land_in_snowflake_once_with_bad_files_quarantined(bucket, snowflake):
    bucket.put(
        {
            "orders/a.csv": _orders(1, 2, 3),
            "orders/types.csv": HEADER.encode() + b"x,1,2026-10-01 10:00:00,1.0,placed\n",
            "orders/b.csv": _orders(4),
        }
    )
    with dg.instance_for_test() as instance:
        first = _ingest_all(instance, bucket, snowflake)
        bucket.put({"orders/a.csv": _orders(5, 6)})  # overwritten: replaces its rows
        _ingest_all(instance, bucket, snowflake, cursor=first.cursor)
        _ingest_all(instance, bucket, snowflake, cursor=first.cursor)  # same versions again
    with snowflake.connect() as con:
        rows = con.execute(
            'SELECT "_LANDFALL_FILE", count(*), sum("AMOUNT") FROM "RAW"."ORDERS" '
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
        entries = ledger.entries(con, "orders")
    assert [(f, n) for f, n, _ in rows] == [("orders/a.csv", 2), ("orders/b.csv", 1)]
    assert float(rows[0][2]) == 11.5  # 5.25 + 6.25: typed by the contract, not text
    states = sorted((e.object_key, e.state, e.rows) for e in entries)
    assert states == [
        ("orders/a.csv", "loaded", 2),
        ("orders/a.csv", "superseded", 0),
        ("orders/b.csv", "loaded", 1),
        ("orders/types.csv", "quarantined", 0),
    ]
    [bad] = [e for e in entries if e.state == "quarantined"]
    assert "column order_id: 1 value(s) are not bigint, e.g. 'x'" in bad.reason


def test_nested_json_lands_in_snowflake_through_dlt(bucket, snowflake):
    from landing.samples import sample_files

    events = {k: v for k, v in sample_files().items() if k.startswith("events/")}
    bucket.put(events)
    with dg.instance_for_test() as instance:
        _ingest_all(instance, bucket, snowflake, zone_name="events")
    with snowflake.connect() as con:
        entries = ledger.entries(con, "events")
        raw = con.execute('SELECT count(*) FROM "RAW"."EVENTS"').fetchone()[0]
        items = con.execute('SELECT count(*) FROM "RAW"."EVENTS__ITEMS"').fetchone()[0]
    assert {e.state for e in entries} == {"loaded"} and len(entries) == len(events)
    assert raw == sum(e.rows for e in entries) > 0
    assert items > 0


def test_a_run_stages_its_files_with_one_sling_stream_and_merges_each(
    bucket, snowflake, monkeypatch
):
    """#22: the objects of one run are staged by one Sling stream into Snowflake (each row
    tagged with its file) and merged per object; a file that breaks the contract is refused
    out of the shared stage, the others load."""
    files = {f"orders/f{i}.csv": orders_csv(i, 100 + i) for i in range(4)}
    files["orders/types.csv"] = b"order_id,customer_id,order_ts,amount,status\nx,1,2026-10-01,1,a\n"
    # the same columns in another order: Sling maps them by name
    files["orders/reordered.csv"] = (
        b"status,amount,order_ts,customer_id,order_id\np,2.50,2026-10-01 10:00:00,3,77\n"
    )
    bucket.put(files)
    alone: list[str] = []
    real_load = landing_ingest._load

    def load(log, zone, obj, local_copy, wh, lock, records):
        alone.append(obj.key)
        return real_load(log, zone, obj, local_copy, wh, lock, records)

    monkeypatch.setattr(landing_ingest, "_load", load)
    with dg.instance_for_test() as instance:
        result = _ingest_all(instance, bucket, snowflake, runs="per_tick")
        [run] = instance.get_runs()
        messages = [e.user_message for e in instance.all_logs(run.run_id)]
    assert len(result.run_requests) == 1
    assert alone == []  # no object needed a staging of its own
    assert any("in one stream" in m for m in messages)
    entries = _entries(snowflake)
    assert {k: e.state for k, e in entries.items()} == {
        k: "quarantined" if k == "orders/types.csv" else "loaded" for k in files
    }
    assert "column order_id: 1 value(s) are not bigint, e.g. 'x'" in (
        entries["orders/types.csv"].reason
    )
    assert _rows_by_file(snowflake) == {
        **{f"orders/f{i}.csv": 2 for i in range(4)},
        "orders/reordered.csv": 1,
    }
    with snowflake.connect() as con:
        row = con.execute(
            'SELECT "ORDER_ID", "CUSTOMER_ID", "AMOUNT", "STATUS" FROM "RAW"."ORDERS" '
            "WHERE \"_LANDFALL_FILE\" = 'orders/reordered.csv'"
        ).fetchone()
        staged = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = '_LANDFALL_STAGE'"
        ).fetchone()[0]
    assert (row[0], row[1], float(row[2]), row[3]) == (77, 3, 2.5, "p")
    assert staged == 0  # the shared stage is dropped after the merge


@pytest.mark.slow
def test_every_bad_file_class_is_quarantined_on_snowflake_and_the_good_ones_load(bucket, snowflake):
    """The embedded bad-file classes (tests/landing/test_landing_guarantees.py) through the
    Snowflake path, all in one run per zone: each bad one quarantined with its reason (ledger
    and S3), every good one loaded, none blocking another."""
    zone = ZONES["orders"].model_copy(update={"max_file_bytes": FILE_CLASS_LIMIT})
    strict = zone.model_copy(update={"prefix": "strict-orders/", "empty_files": "quarantine"})
    bad, good = bad_file_classes(), good_file_classes()
    bucket.put({k: body for k, (body, _) in bad.items()} | {k: b for k, (b, _) in good.items()})
    with dg.instance_for_test() as instance:
        _ingest_all(instance, bucket, snowflake, zone=zone, runs="per_tick")
        _ingest_all(instance, bucket, snowflake, zone=strict, runs="per_tick")
    entries = _entries(snowflake)
    assert sorted(entries) == sorted([*bad, *good])
    assert_quarantined_with_reasons(bucket, entries, bad)
    for key, (_, rows) in good.items():
        assert (entries[key].state, entries[key].rows, entries[key].reason) == (
            "loaded",
            rows,
            None,
        )
    assert _rows_by_file(snowflake) == {k: rows for k, (_, rows) in good.items() if rows}


@pytest.mark.slow
def test_a_json_zone_on_snowflake_quarantines_bad_lines_and_replaces_overwritten_files(
    bucket, snowflake
):
    zone = ZONES["events"]
    bucket.put(
        {
            "events/a.jsonl": f"{_event('a1', 2)}\n{_event('a2', 1)}\n".encode(),
            "events/bad.jsonl": f"{_event('b1', 1)}\n{{not json\n".encode(),
            "events/blank.jsonl": b"\n  \n",
        }
    )
    with dg.instance_for_test() as instance:
        first = _ingest_all(instance, bucket, snowflake, zone=zone, runs="per_tick")
        bucket.put({"events/a.jsonl": f"{_event('a3', 1)}\n".encode()})
        _ingest_all(instance, bucket, snowflake, zone=zone, cursor=first.cursor, runs="per_tick")
        _ingest_all(instance, bucket, snowflake, zone=zone, cursor=first.cursor, runs="per_tick")
    entries = _entries(snowflake, "events")
    assert {k: (e.state, e.rows) for k, e in entries.items()} == {
        "events/a.jsonl": ("loaded", 1),
        "events/bad.jsonl": ("quarantined", 0),
        "events/blank.jsonl": ("loaded", 0),  # the zone loads empty exports
    }
    assert "malformed JSON on line 2" in entries["events/bad.jsonl"].reason
    with snowflake.connect() as con:
        events = con.execute('SELECT "EVENT_ID", "_LANDFALL_FILE" FROM "RAW"."EVENTS"').fetchall()
        items = con.execute('SELECT count(*) FROM "RAW"."EVENTS__ITEMS"').fetchone()[0]
    assert events == [("a3", "events/a.jsonl")]  # the overwritten version's rows are gone
    assert items == 1


@pytest.mark.slow
def test_a_step_retry_on_snowflake_loads_only_what_no_attempt_recorded(
    bucket, snowflake, monkeypatch
):
    """A warehouse write fails for one object (in the batch merge, its own merge and its own
    load, by tests/ops/faults.py): the others are recorded, the step's retry touches only it."""
    flaky_key = "orders/f1.csv"
    bucket.put({f"orders/f{i}.csv": orders_csv(i, 10 + i) for i in range(3)})
    calls: list[str] = []

    def flaky(key: str) -> None:
        calls.append(key)
        if key == flaky_key and calls.count(key) == 1:
            raise OSError("connection reset by peer")

    fail_warehouse_writes(
        monkeypatch, flaky, lambda keys: flaky_key in keys, "connection reset by peer"
    )
    monkeypatch.setattr(zone_component, "retry_policy", lambda kind: dg.RetryPolicy(max_retries=1))
    with dg.instance_for_test() as instance:
        _ingest_all(instance, bucket, snowflake, runs="per_tick")
        [run] = instance.get_runs()
        retries = [
            e
            for e in instance.all_logs(run.run_id)
            if e.dagster_event and e.dagster_event.event_type_value == "STEP_UP_FOR_RETRY"
        ]
    assert len(retries) == 1
    # first attempt: each object on its own after the batch merge failed; the retry: only f1
    assert sorted(calls[:3]) == [f"orders/f{i}.csv" for i in range(3)]
    assert calls[3:] == [flaky_key]
    entries = _entries(snowflake)
    assert {(k, e.state, e.rows) for k, e in entries.items()} == {
        (f"orders/f{i}.csv", "loaded", 2) for i in range(3)
    }
    with snowflake.connect() as con:
        rows = con.execute(
            'SELECT count(*), count(DISTINCT "ORDER_ID") FROM "RAW"."ORDERS"'
        ).fetchone()
    assert tuple(rows) == (6, 6)


def test_schema_change_on_snowflake_passes_unchanged_and_fails_a_real_change(bucket, snowflake):
    """Snowflake spells the zone's types its own way (NUMBER(38,0) for bigint, VARCHAR(16777216)
    for varchar, TIMESTAMP_NTZ): an unchanged table passes its `schema_change` check, an added
    column still fails it."""
    from orchestration.schema_changes import CHECK_NAME

    raw_orders = dg.AssetKey(["raw", "orders"])
    check_key = dg.AssetCheckKey(raw_orders, CHECK_NAME)

    def verdict(instance) -> dg.AssetCheckEvaluation:
        """The schema_change verdict the newest run (the load itself) reported."""
        [run] = instance.get_runs(limit=1)
        [evaluation] = [
            e.dagster_event.event_specific_data
            for e in instance.all_logs(
                run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
            )
            if e.dagster_event.event_specific_data.asset_check_key == check_key
        ]
        return evaluation

    bucket.put({"orders/a.csv": orders_csv(1)})
    with dg.instance_for_test() as instance:
        cursor = _ingest_all(instance, bucket, snowflake).cursor
        assert verdict(instance).passed  # the baseline
        bucket.put({"orders/b.csv": orders_csv(2)})
        cursor = _ingest_all(instance, bucket, snowflake, cursor=cursor).cursor
        unchanged = verdict(instance)
        assert unchanged.passed, unchanged.description
        assert unchanged.description == "no change"
        bucket.put(
            {
                "orders/c.csv": b"order_id,customer_id,order_ts,amount,status,coupon\n"
                b"3,3,2026-10-01 10:00:00,1.50,placed,SPRING\n"
            }
        )
        _ingest_all(instance, bucket, snowflake, cursor=cursor)
        changed = verdict(instance)
    assert not changed.passed
    assert changed.severity == dg.AssetCheckSeverity.WARN
    assert changed.description == "schema changed: added coupon VARCHAR"


@pytest.mark.slow
def test_a_json_run_on_snowflake_is_one_dlt_run_merged_per_object(bucket, snowflake, monkeypatch):
    """#22 for dlt zones on Snowflake: one pipeline run (dlt's sqlalchemy destination on the
    stand-in) for the run's objects, each merged with its child rows; a file whose type differs
    from the others' makes dlt split the column, so that batch stages each object alone and
    the contract check quarantines it."""
    zone = ZONES["events"]
    bucket.put(
        {
            "events/a.jsonl": f"{_event('a1', 2)}\n{_event('a2', 1)}\n".encode(),
            "events/b.jsonl": f"{_event('b1', 3)}\n".encode(),
        }
    )
    alone: list[str] = []
    real_load = landing_ingest._load

    def load(log, zone, obj, local_copy, wh, lock, records):
        alone.append(obj.key)
        return real_load(log, zone, obj, local_copy, wh, lock, records)

    monkeypatch.setattr(landing_ingest, "_load", load)
    with dg.instance_for_test() as instance:
        first = _ingest_all(instance, bucket, snowflake, zone=zone, runs="per_tick")
        assert alone == []  # one pipeline run staged both
        bucket.put(
            {
                "events/c.jsonl": f"{_event('c1', 1)}\n".encode(),
                "events/d.jsonl": f"{_event('d1', 1, customer_id='abc')}\n".encode(),
            }
        )
        _ingest_all(instance, bucket, snowflake, zone=zone, cursor=first.cursor, runs="per_tick")
    assert sorted(alone) == ["events/c.jsonl", "events/d.jsonl"]
    entries = _entries(snowflake, "events")
    assert {k: (e.state, e.rows) for k, e in entries.items()} == {
        "events/a.jsonl": ("loaded", 2),
        "events/b.jsonl": ("loaded", 1),
        "events/c.jsonl": ("loaded", 1),
        "events/d.jsonl": ("quarantined", 0),
    }
    assert "column customer_id" in entries["events/d.jsonl"].reason
    with snowflake.connect() as con:
        items = con.execute(
            'SELECT "_LANDFALL_FILE", count(*) FROM "RAW"."EVENTS__ITEMS" GROUP BY 1 ORDER BY 1'
        ).fetchall()
        columns = raw_load.table_columns(con, "raw", "events__items")
    assert items == [("events/a.jsonl", 3), ("events/b.jsonl", 3), ("events/c.jsonl", 1)]
    assert "_dlt_root_id" not in columns and not [c for c in columns if "__v_" in c]


@pytest.mark.slow
def test_a_failed_batch_stage_on_snowflake_falls_back_to_one_staging_per_object(
    bucket, snowflake, monkeypatch
):
    from landing import sling_loader

    real_stage = sling_loader.stage_into_table

    def stage(zone, local_copy, *args, **kwargs):
        if local_copy.is_dir():  # the injected fault: the one stream over the run's copies
            raise sling_loader.SlingRunError("sling exited 1: connection reset")
        return real_stage(zone, local_copy, *args, **kwargs)

    monkeypatch.setattr(sling_loader, "stage_into_table", stage)
    bucket.put({f"orders/f{i}.csv": orders_csv(i) for i in range(3)})
    with dg.instance_for_test() as instance:
        _ingest_all(instance, bucket, snowflake, runs="per_tick")
        [run] = instance.get_runs()
        messages = [e.user_message for e in instance.all_logs(run.run_id)]
    assert sum("batch staging of 3 objects failed" in m for m in messages) == 3
    entries = _entries(snowflake)
    assert {(k, e.state, e.rows) for k, e in entries.items()} == {
        (f"orders/f{i}.csv", "loaded", 1) for i in range(3)
    }
    with snowflake.connect() as con:
        staged = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = '_LANDFALL_STAGE'"
        ).fetchone()[0]
    assert staged == 0  # the batch's stage table went with its failure
