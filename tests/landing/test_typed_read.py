"""DuckDB's typed read of one object (the contract's types converted by read_csv itself) stands
in for the text stage + contract check only where both agree: a value the typed read accepts
is the value the contract check's TRY_CAST gives, and a value that check would refuse is never
accepted. Whatever the typed read refuses goes back to the text stage, which names the reason."""

from __future__ import annotations

import csv
import io
import math
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from landing.ingest import FileOutcome, ingest_objects
from landing.raw_load import table_columns
from landing.sling_loader import duckdb_csv_options
from landing.warehouse import _read_csv
from tests.landing.helpers import ORDERS_HEADER, ZONES, orders_csv

ORDERS = ZONES["orders"]
# per contract type: what exports hold, and what a lenient parser might read differently
VALUES = {
    "BIGINT": ["1", "-5", "+7", " 12 ", "1.5", "1e3", "9223372036854775808", "0x10", "1_000",
               "x", "", "NA", "１", "1,000"],
    "INTEGER": ["12", "2147483648", "-2147483648", "3.0"],
    "DOUBLE": ["1.5", "nan", "inf", "-Infinity", "1e400", "1,5", " 2.5", ".5", "5."],
    "BOOLEAN": ["true", "T", "yes", "1", "0", "y", "off", "TRUE", "maybe"],
    "VARCHAR": ["text", " padded ", "é€", "a,b", 'say "hi"'],
    "DATE": ["2024-01-31", "2024-02-30", "20240131", "31/01/2024", "2024-1-5",
             "2024-01-31 10:00:00", "31-01-2024"],
    "TIMESTAMP": ["2024-01-31 10:00:00", "2024-01-31T10:00:00", "2024-01-31",
                  "2024-01-31 10:00:00+02", "2024-01-31 10:00:00.1234567", "10:00",
                  "13-01-2024 10:00:00", "2024-01-31 25:00:00"],
    "TIMESTAMPTZ": ["2024-01-31 10:00:00+02", "2024-01-31 10:00:00", "2024-01-31T10:00:00Z"],
    "DECIMAL(18,2)": ["1.005", "1e3", "12345678901234567.89", "1234567890123456789", " 3 ",
                      "-0.001", "1,000", "0.5%"],
}  # fmt: skip


def _file(folder: Path, value: str) -> Path:
    path = folder / "v.csv"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([["v"], [value]])
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def _typed(path: Path, type_name: str) -> tuple[bool, object]:
    """(accepted, value) of the typed read, as the merge session sets it up."""
    with duckdb.connect() as con:
        try:
            _read_csv(con, "stage", (str(path), duckdb_csv_options(ORDERS)), {"v": type_name})
            return True, con.execute("SELECT v FROM temp.main.stage").fetchone()[0]
        except duckdb.Error:
            return False, None


def _contract_check(path: Path, type_name: str) -> tuple[bool, object]:
    """(accepted, value) of the text stage: the contract check's TRY_CAST, then the merge's
    CAST (what `raw_load` runs)."""
    with duckdb.connect() as con:
        _read_csv(con, "stage", (str(path), duckdb_csv_options(ORDERS)))
        text, converted = con.execute(
            f"SELECT v, TRY_CAST(CAST(v AS VARCHAR) AS {type_name}) FROM temp.main.stage"
        ).fetchone()
    return text is None or converted is not None, converted


def _same(a: object, b: object) -> bool:
    """Equal, or both NaN (the one value unequal to itself)."""
    nan = [isinstance(v, float) and math.isnan(v) for v in (a, b)]
    return a == b or nan == [True, True]


def test_the_typed_read_accepts_only_what_the_contract_check_accepts_with_its_values(
    tmp_path: Path,
) -> None:
    verdicts = set()
    for type_name, values in VALUES.items():
        for value in values:
            path = _file(tmp_path, value)
            typed_ok, typed_value = _typed(path, type_name)
            checked_ok, checked_value = _contract_check(path, type_name)
            if typed_ok:
                assert checked_ok, (type_name, value, typed_value)
                assert _same(typed_value, checked_value), (type_name, value, typed_value)
            verdicts.add((typed_ok, checked_ok))
    # values were accepted and refused, so both verdicts were compared (on DuckDB 1.5 the
    # two agree on every value here; a typed refusal alone would only cost a second read)
    assert {(True, True), (False, False)} <= verdicts


def _ingest(bucket, warehouse, files: dict[str, bytes]):
    bucket.put(files)
    return {
        key: (log, outcome)
        for key, log, outcome in ingest_objects(
            ORDERS, bucket.s3, bucket.landing.bucket, sorted(files), warehouse
        )
    }


def test_a_good_object_loads_through_the_typed_read(bucket, warehouse) -> None:
    [(log, outcome)] = _ingest(bucket, warehouse, {"orders/good.csv": orders_csv(1, 2, 3)}).values()
    assert isinstance(outcome, FileOutcome) and outcome.reason is None
    assert outcome.counts == {"orders": 3}
    messages = [message for _, message in log.lines]
    assert any("typed by the contract" in m for m in messages), messages
    assert not any("typed read failed" in m for m in messages), messages
    with warehouse.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT order_id, typeof(order_id), amount, typeof(order_ts) FROM raw.orders "
            "ORDER BY order_id"
        ).fetchall()
    assert rows == [(i, "BIGINT", Decimal(f"{i}.50"), "TIMESTAMP") for i in (1, 2, 3)]


def test_a_value_the_typed_read_refuses_is_quarantined_with_the_contract_checks_reason(
    bucket, warehouse
) -> None:
    body = (ORDERS_HEADER + "1,1,2026-10-01 10:00:00,1.50,placed\n"
            "2,1,2026-10-01 10:00:00,abc,placed\n").encode()  # fmt: skip
    [(log, outcome)] = _ingest(bucket, warehouse, {"orders/bad-amount.csv": body}).values()
    assert isinstance(outcome, FileOutcome)
    assert outcome.reason == (
        "column amount: 1 value(s) are not decimal(18,2), e.g. 'abc' on line 3"
    )
    messages = [message for _, message in log.lines]
    assert any("typed read failed" in m and "ConversionException" in m for m in messages)
    with warehouse.connect(read_only=True) as con:
        # the typed merge that failed created the raw table in its transaction: rolled back
        assert table_columns(con, "raw", "orders") == {}
        assert con.execute(
            "SELECT state FROM landfall.ledger WHERE object_key = 'orders/bad-amount.csv'"
        ).fetchall() == [("quarantined",)]


def test_a_padded_header_loads_as_the_text_stage_reads_it(bucket, warehouse) -> None:
    """read_csv trims header names: the typed read takes the names from it, not from a parse
    of its own that would leave ` order_id ` unmatched and refuse the file."""
    body = orders_csv(1, 2).replace(b"order_id,customer_id", b" order_id , customer_id", 1)
    [(log, outcome)] = _ingest(bucket, warehouse, {"orders/padded.csv": body}).values()
    assert isinstance(outcome, FileOutcome) and outcome.reason is None, outcome.reason
    assert outcome.counts == {"orders": 2}
    assert not any("typed read failed" in message for _, message in log.lines)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        # a contract column missing: the typed read cannot bind, the text stage says which
        (b"order_id,customer_id,order_ts,status\n1,1,2026-10-01 10:00:00,placed\n", "missing"),
        # a DD-MM-YYYY timestamp: the typed read refuses, the contract check names line 2
        (
            (ORDERS_HEADER + "1,1,13-10-2026 10:00:00,1.50,placed\n").encode(),
            "column order_ts: 1 value(s) are not timestamp, e.g. '13-10-2026 10:00:00' on line 2",
        ),
    ],
)
def test_what_the_typed_read_cannot_take_keeps_its_reason(bucket, warehouse, body, reason):
    [(_, outcome)] = _ingest(bucket, warehouse, {"orders/odd.csv": body}).values()
    assert isinstance(outcome, FileOutcome)
    assert outcome.reason is not None and reason in outcome.reason, outcome.reason
