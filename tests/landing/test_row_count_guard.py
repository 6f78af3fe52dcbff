"""The last line of defence against silent loss: rows written must equal records validated."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from landing import ledger, raw_load
from landing.objects import LandedObject
from landing.validation import BadFileError
from tests.landing.helpers import ZONES

AT = datetime(2026, 12, 3, 9, 0)


def _stage(con: duckdb.DuckDBPyConnection, ids: list[int]) -> raw_load.StagedTable:
    con.execute("CREATE SCHEMA IF NOT EXISTS stage")
    con.execute(
        "CREATE OR REPLACE TABLE stage.orders (order_id VARCHAR, customer_id VARCHAR, "
        "order_ts VARCHAR, amount VARCHAR, status VARCHAR)"
    )
    for i in ids:
        con.execute(
            "INSERT INTO stage.orders VALUES (?, '1', '2026-12-01 10:00:00', '1.50', 'placed')",
            [str(i)],
        )
    return raw_load.StagedTable("orders", "stage", "orders")


def test_a_loader_that_wrote_fewer_rows_than_validated_records_loads_nothing(tmp_path):
    zone = ZONES["orders"]
    obj = LandedObject("orders", "orders/a.csv", "etag-1", 100, AT)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        raw_load.merge_staged(con, zone, [_stage(con, [1, 2])], obj, AT, validated_records=2)
        newer = LandedObject("orders", "orders/a.csv", "etag-2", 100, AT)
        with pytest.raises(BadFileError) as raised:
            raw_load.merge_staged(con, zone, [_stage(con, [3, 4])], newer, AT, validated_records=3)
        assert "validation counted 3 record(s), the loader wrote 2 row(s)" in str(raised.value)
        # rolled back: the earlier version's rows and ledger row are untouched, nothing of the
        # new version is in the raw table
        ids = con.execute("SELECT order_id FROM raw.orders ORDER BY 1").fetchall()
        assert ids == [(1,), (2,)]
        assert [(e.etag, e.state) for e in ledger.entries(con)] == [("etag-1", "loaded")]
