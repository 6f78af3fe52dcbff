"""Schema changes between materializations: a diff in the metadata, a WARN check for an allowed
change, a failing ERROR check naming the column and both types for a broken contract."""

import json

import dagster as dg
import pytest

from orchestration import transformation
from orchestration.dbt_project import manifest_path
from orchestration.schema_changes import (
    CHECK_NAME,
    DIFF_KEY,
    Contract,
    dbt_contracts,
    diff_schemas,
    evaluate,
    normalise_type,
    types_match,
    with_schema_changes,
)
from orchestration.translation import LandfallDbtTranslator
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


def _raw_check(run: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    """The raw table's schema_change, reported by the load's own step (the same run)."""
    (evaluation,) = [
        e
        for e in run.get_asset_check_evaluations()
        if e.asset_check_key == dg.AssetCheckKey(RAW_ORDERS, CHECK_NAME)
    ]
    return evaluation


def test_an_extra_column_the_zone_allows_is_reported_as_a_schema_change(bucket, warehouse):
    zone = ZONES["orders"]
    bucket.put({"orders/first.csv": ORDERS_CSV, "orders/second.csv": ORDERS_WITH_COUPON_CSV})
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(
            zone.partitions_name, ["orders/first.csv", "orders/second.csv"]
        )
        first = _raw_check(ingest(instance, zone, "orders/first.csv", bucket.landing, warehouse))
        assert first.passed  # nothing to compare with yet

        run = ingest(instance, zone, "orders/second.csv", bucket.landing, warehouse)
        mat = next(
            m
            for m in run.asset_materializations_for_node("ingest_orders")
            if m.asset_key == RAW_ORDERS
        )
        assert mat.metadata[DIFF_KEY].value["added"] == {"coupon": "VARCHAR"}
        assert mat.metadata["landfall/schema_change"].value == "added coupon VARCHAR"

        check = _raw_check(run)
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


# (spelling, DuckDB's normal form, Snowflake's normal form): what the zone YAML, DuckDB's
# information_schema, dagster-dbt's column metadata (dbt's Column.data_type), dbt contracts and
# Snowflake's DESCRIBE each write for the same type.
SPELLINGS = [
    ("varchar", "VARCHAR", "VARCHAR"),
    ("VARCHAR", "VARCHAR", "VARCHAR"),
    ("character varying(256)", "VARCHAR", "VARCHAR(256)"),
    ("CHARACTER VARYING(16777216)", "VARCHAR", "VARCHAR"),
    ("VARCHAR(16777216)", "VARCHAR", "VARCHAR"),
    ("text", "VARCHAR", "VARCHAR"),
    ("STRING", "VARCHAR", "VARCHAR"),
    ("varchar(10)", "VARCHAR", "VARCHAR(10)"),
    ("char", "VARCHAR", "VARCHAR(1)"),
    ("integer", "INTEGER", "NUMBER(38,0)"),
    ("INT", "INTEGER", "NUMBER(38,0)"),
    ("int4", "INTEGER", "INT4"),  # not a Snowflake type: left as written
    ("bigint", "BIGINT", "NUMBER(38,0)"),
    ("int8", "BIGINT", "INT8"),
    ("NUMBER(38,0)", "DECIMAL(38,0)", "NUMBER(38,0)"),
    ("number", "DECIMAL(18,3)", "NUMBER(38,0)"),
    ("smallint", "SMALLINT", "NUMBER(38,0)"),
    ("double", "DOUBLE", "DOUBLE"),
    ("DOUBLE PRECISION", "DOUBLE", "DOUBLE"),
    ("float8", "DOUBLE", "DOUBLE"),
    ("FLOAT", "FLOAT", "DOUBLE"),  # 4 bytes in DuckDB, 8 in Snowflake
    ("real", "FLOAT", "DOUBLE"),
    ("timestamp", "TIMESTAMP", "TIMESTAMP"),
    ("TIMESTAMP_NTZ", "TIMESTAMP", "TIMESTAMP"),
    ("TIMESTAMP_NTZ(9)", "TIMESTAMP", "TIMESTAMP"),
    ("TIMESTAMP_NTZ(3)", "TIMESTAMP", "TIMESTAMP(3)"),
    ("timestamp without time zone", "TIMESTAMP", "TIMESTAMP"),
    ("datetime", "TIMESTAMP", "TIMESTAMP"),
    ("timestamptz", "TIMESTAMPTZ", "TIMESTAMPTZ"),
    ("TIMESTAMP_TZ", "TIMESTAMPTZ", "TIMESTAMPTZ"),
    ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ", "TIMESTAMPTZ"),
    ("TIMESTAMP_LTZ", "TIMESTAMP_LTZ", "TIMESTAMP_LTZ"),
    ("decimal(18, 2)", "DECIMAL(18,2)", "NUMBER(18,2)"),
    ("NUMERIC(18,2)", "DECIMAL(18,2)", "NUMBER(18,2)"),
    ("NUMBER(18,2)", "DECIMAL(18,2)", "NUMBER(18,2)"),
    ("decimal(10)", "DECIMAL(10,0)", "NUMBER(10,0)"),
    ("bool", "BOOLEAN", "BOOLEAN"),
    ("BOOLEAN", "BOOLEAN", "BOOLEAN"),
    ("date", "DATE", "DATE"),
    ("struct(a varchar)", "STRUCT(A VARCHAR)", "STRUCT(A VARCHAR)"),
]


@pytest.mark.parametrize(("spelling", "duckdb", "snowflake"), SPELLINGS)
def test_each_spelling_normalises_by_its_warehouse_rules(spelling, duckdb, snowflake):
    assert normalise_type(spelling, "duckdb") == duckdb
    assert normalise_type(spelling, "snowflake") == snowflake
    # a normal form is its own normal form
    assert normalise_type(duckdb, "duckdb") == duckdb
    assert normalise_type(snowflake, "snowflake") == snowflake


@pytest.mark.parametrize(
    ("declared", "actual", "warehouse", "match"),
    [
        # the false alarm on the sample mart: dbt reports DuckDB's VARCHAR as character varying
        ("varchar", "CHARACTER VARYING(256)", "duckdb", True),
        ("varchar", "VARCHAR(16777216)", "snowflake", True),
        ("varchar", "VARCHAR(256)", "snowflake", True),  # the contract leaves the length open
        ("varchar(10)", "VARCHAR(10)", "snowflake", True),
        ("varchar(10)", "VARCHAR(16777216)", "snowflake", False),  # a fixed length is checked
        ("bigint", "NUMBER(38,0)", "snowflake", True),
        ("integer", "NUMBER(38,0)", "snowflake", True),
        ("integer", "BIGINT", "duckdb", False),  # distinct widths in DuckDB
        ("double", "FLOAT", "snowflake", True),
        ("double", "FLOAT", "duckdb", False),
        ("timestamp", "TIMESTAMP_NTZ", "snowflake", True),
        ("timestamp", "TIMESTAMP_NTZ(3)", "snowflake", True),
        ("timestamp", "timestamp without time zone", "duckdb", True),
        ("timestamp", "TIMESTAMP_TZ", "snowflake", False),
        ("timestamptz", "TIMESTAMP WITH TIME ZONE", "duckdb", True),
        ("decimal(18,2)", "NUMBER(18,2)", "snowflake", True),
        ("decimal(18,2)", "DECIMAL(24,6)", "duckdb", False),
        ("boolean", "bool", "duckdb", True),
        ("bigint", "VARCHAR", "duckdb", False),
    ],
)
def test_declared_types_match_the_tables_spelling(declared, actual, warehouse, match):
    assert types_match(declared, actual, warehouse) is match


def _schema(**columns: str) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(n, t) for n, t in columns.items()])


def test_the_sample_mart_as_dbt_reports_it_meets_its_contract_on_both_warehouses():
    manifest = json.loads(manifest_path().read_text())
    contracts = dbt_contracts(manifest, LandfallDbtTranslator())
    contract = contracts[MART]
    assert contract.warehouse == "duckdb"
    # DuckDB through dagster-dbt (dbt's Column.data_type): strings as character varying(256)
    duckdb_schema = _schema(
        **{
            c: {"varchar": "character varying(256)"}.get(t, t.upper())
            for c, t in contract.columns.items()
        }
    )
    assert evaluate(MART, None, duckdb_schema, contract).passed
    # the same contract on Snowflake, as DESCRIBE reports the table
    snowflake_spelling = {
        "bigint": "NUMBER(38,0)",
        "varchar": "VARCHAR(16777216)",
        "double": "FLOAT",
        "timestamp": "TIMESTAMP_NTZ(9)",
    }
    snowflake_schema = _schema(
        **{c: snowflake_spelling[t.lower()] for c, t in contract.columns.items()}
    )
    on_snowflake = Contract(contract.columns, "snowflake")
    assert evaluate(MART, None, snowflake_schema, on_snowflake).passed
    broken = _schema(**{**{c.name: c.type for c in snowflake_schema.columns}, "country": "FLOAT"})
    result = evaluate(MART, snowflake_schema, broken, on_snowflake)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert result.description == "contract broken: column country: contract VARCHAR, table DOUBLE"


def test_the_first_table_is_a_baseline_not_a_change():
    schema = _schema(a="int8")
    assert not diff_schemas(None, schema).changed
    assert not diff_schemas(_schema(a="BIGINT"), schema).changed
    # a materialization before the table existed (every file quarantined) has no columns
    assert not diff_schemas(_schema(), schema).changed
    first = evaluate(RAW_ORDERS, _schema(), schema, None)
    assert first.passed and first.description == "first table: the baseline for later changes"
    nothing = evaluate(RAW_ORDERS, None, _schema(), {"a": "bigint"})
    assert nothing.passed and nothing.description == "no table yet (nothing loaded so far)"
    # a table that disappears is a change, and breaks its contract
    gone = evaluate(RAW_ORDERS, schema, _schema(), {"a": "bigint"})
    assert not gone.passed and gone.severity == dg.AssetCheckSeverity.ERROR


BAD_ORDERS_CSV = (
    b"order_id,customer_id,order_ts,amount,status\nnot-a-number,10,2024-05-01,1.00,placed\n"
)


def test_a_new_zones_first_successful_load_after_a_quarantine_passes(bucket, warehouse):
    """The first file of a new zone is quarantined (no table yet); the next one loads: neither
    is a schema change."""
    zone = ZONES["orders"]
    bucket.put({"orders/bad.csv": BAD_ORDERS_CSV, "orders/good.csv": ORDERS_CSV})
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(zone.partitions_name, ["orders/bad.csv", "orders/good.csv"])
        bad = ingest(instance, zone, "orders/bad.csv", bucket.landing, warehouse)
        quarantined = _raw_check(bad)
        assert quarantined.passed, quarantined.description

        run = ingest(instance, zone, "orders/good.csv", bucket.landing, warehouse)
        loaded = next(
            m
            for m in run.asset_materializations_for_node("ingest_orders")
            if m.asset_key == RAW_ORDERS
        )
        assert DIFF_KEY not in loaded.metadata
        check = _raw_check(run)
        assert check.passed, check.description
        assert check.description == "first table: the baseline for later changes"


def test_a_zone_contract_on_snowflake_reads_snowflakes_spelling_of_its_types():
    """The orders zone's raw table as Snowflake describes it meets the zone's contract under
    Snowflake's rules (the false alarm: checked under DuckDB's, every column was "broken");
    a column of another type still breaks it."""
    zone = ZONES["orders"]
    as_snowflake = {
        "order_id": "NUMBER(38,0)",
        "customer_id": "NUMBER(38,0)",
        "order_ts": "TIMESTAMP_NTZ",
        "amount": "NUMBER(18,2)",
        "status": "VARCHAR(16777216)",
        "_landfall_file": "VARCHAR(16777216)",
    }

    def schema(columns: dict[str, str]) -> dg.TableSchema:
        return dg.TableSchema(columns=[dg.TableColumn(n, t) for n, t in columns.items()])

    contract = Contract(zone.columns, "snowflake")
    unchanged = evaluate(RAW_ORDERS, schema(as_snowflake), schema(as_snowflake), contract)
    assert unchanged.passed and unchanged.description == "no change"
    assert not evaluate(RAW_ORDERS, None, schema(as_snowflake), zone.columns).passed  # DuckDB's
    retyped = {**as_snowflake, "amount": "FLOAT"}
    broken = evaluate(RAW_ORDERS, schema(as_snowflake), schema(retyped), contract)
    assert not broken.passed and broken.severity == dg.AssetCheckSeverity.ERROR
    assert (
        broken.description == "contract broken: column amount: contract NUMBER(18,2), table DOUBLE"
    )
