"""Schema changes between materializations: a diff in the metadata, a WARN check for an allowed
change, a failing ERROR check naming the column and both types for a broken contract."""

import dagster as dg

from orchestration import ingestion, transformation
from orchestration.schema_changes import (
    CHECK_NAME,
    DIFF_KEY,
    diff_schemas,
    normalise_type,
    with_schema_changes,
)
from tests.landing.helpers import ZONES, ingest

RAW_ORDERS = dg.AssetKey(["raw", "orders"])
MART = dg.AssetKey(["marts", "customer_order_features"])

ORDERS_CSV = b"order_id,customer_id,order_ts,amount,status\n1,10,2024-05-01 10:00:00,10.50,placed\n"
ORDERS_WITH_COUPON_CSV = (
    b"order_id,customer_id,order_ts,amount,status,coupon\n"
    b"2,11,2024-05-02 11:00:00,20.00,shipped,SPRING\n"
)


def _run_check(
    defs_checks, instance: dg.DagsterInstance, key: dg.AssetKey
) -> dg.AssetCheckEvaluation:
    check_key = dg.AssetCheckKey(key, CHECK_NAME)
    defs = dg.Definitions(
        asset_checks=defs_checks,
        jobs=[dg.define_asset_job("schema", selection=dg.AssetSelection.checks(check_key))],
    )
    result = defs.resolve_job_def("schema").execute_in_process(instance=instance)
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def _schema_checks(location) -> list:
    return [
        c
        for c in location.defs.asset_checks or []
        if any(k.name == CHECK_NAME for k in c.check_keys)
    ]


def test_an_extra_column_the_zone_allows_is_reported_as_a_schema_change(bucket, warehouse):
    zone = ZONES["orders"]
    bucket.put({"orders/first.csv": ORDERS_CSV, "orders/second.csv": ORDERS_WITH_COUPON_CSV})
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(
            zone.partitions_name, ["orders/first.csv", "orders/second.csv"]
        )
        ingest(instance, zone, "orders/first.csv", bucket.landing, warehouse)
        first = _run_check(_schema_checks(ingestion), instance, RAW_ORDERS)
        assert first.passed  # nothing to compare with yet

        run = ingest(instance, zone, "orders/second.csv", bucket.landing, warehouse)
        mat = next(
            m
            for m in run.asset_materializations_for_node("ingest_orders")
            if m.asset_key == RAW_ORDERS
        )
        assert mat.metadata[DIFF_KEY].value["added"] == {"coupon": "VARCHAR"}
        assert mat.metadata["landfall/schema_change"].value == "added coupon VARCHAR"

        check = _run_check(_schema_checks(ingestion), instance, RAW_ORDERS)
        assert not check.passed
        assert check.severity == dg.AssetCheckSeverity.WARN
        assert "added coupon VARCHAR" in check.description

    # nothing lost: both files' rows are there, the first one's coupon is null
    with warehouse.connect(read_only=True) as con:
        rows = con.execute("select order_id, coupon from raw.orders order by order_id").fetchall()
    assert rows == [(1, None), (2, "SPRING")]


def _mart_schema(order_count_type: str) -> dg.TableSchema:
    columns = {
        "customer_id": "BIGINT",
        "country": "VARCHAR",
        "signup_ts": "TIMESTAMP",
        "order_count": order_count_type,
        "total_amount": "DOUBLE",
        "avg_order_amount": "DOUBLE",
        "first_order_ts": "TIMESTAMP",
        "last_order_ts": "TIMESTAMP",
        "days_since_last_order": "BIGINT",
        "event_count": "BIGINT",
        "page_view_count": "BIGINT",
        "add_to_cart_count": "BIGINT",
        "checkout_count": "BIGINT",
        "cart_items_qty": "BIGINT",
    }
    return dg.TableSchema(columns=[dg.TableColumn(n, t) for n, t in columns.items()])


def test_a_mart_change_that_breaks_its_dbt_contract_fails_naming_the_column():
    checks = _schema_checks(transformation)
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                MART, metadata={"dagster/column_schema": _mart_schema("BIGINT")}
            )
        )
        assert _run_check(checks, instance, MART).passed  # matches the enforced contract

        # the next build's output, as dagster-dbt streams it, gets the diff
        changed = dg.Output(
            None,
            output_name=MART.to_python_identifier(),
            metadata={"dagster/column_schema": _mart_schema("VARCHAR")},
        )
        (out,) = with_schema_changes(instance, [changed], [MART])
        assert out.metadata[DIFF_KEY].value["retyped"] == {
            "order_count": {"from": "BIGINT", "to": "VARCHAR"}
        }
        instance.report_runless_asset_event(dg.AssetMaterialization(MART, metadata=out.metadata))

        check = _run_check(checks, instance, MART)
        assert not check.passed
        assert check.severity == dg.AssetCheckSeverity.ERROR
        assert "column order_count: contract BIGINT, table VARCHAR" in check.description


def test_type_spellings_compare_equal_and_a_first_schema_is_no_change():
    assert normalise_type("decimal(18, 2)") == "DECIMAL(18,2)"
    assert normalise_type("timestamptz") == normalise_type("TIMESTAMP WITH TIME ZONE")
    schema = dg.TableSchema(columns=[dg.TableColumn("a", "int8")])
    assert not diff_schemas(None, schema).changed
    assert not diff_schemas(dg.TableSchema(columns=[dg.TableColumn("a", "BIGINT")]), schema).changed
