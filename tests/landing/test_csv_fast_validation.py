"""The CSV validator's fast scan (bytes operations while the file quotes nothing) against the
strict csv reader it stands in for: the same record count or the same quarantine reason, for
files cut into chunks anywhere."""

from __future__ import annotations

import random

import pytest

from landing.validation import (
    BadFileError,
    _count_csv_fast,
    _count_csv_records,
    _decoded_lines,
)
from landing.zones import ZoneSpec, load_zones

ORDERS = next(z for z in load_zones() if z.name == "orders")
# one column: a blank line has as many commas as a record, and only the reader skips it
ONE_COLUMN = ORDERS.model_copy(update={"columns": {"order_id": "bigint"}})
HEADER = b"order_id,customer_id,order_ts,amount,status"
# pieces a record is made of: plain values, separators, line ends of both kinds, and what the
# fast scan must hand to the reader (quotes, NUL, a lone CR) or refuse (bytes that are not UTF-8)
PIECES = [b"1", b"abc", b"", b" ", b",", b",", b",", b"\n", b"\r\n", b"\xc3\xa9", b"\xe2\x82\xac"]
RARE = [b'"', b'"x,\ny"', b"\r", b"\0", b"\xff", b"\xc3"]


def _outcome(count) -> int | str:
    try:
        return count()
    except BadFileError as exc:
        return f"BadFileError: {exc}"


def _chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _both(data: bytes, size: int, zone: ZoneSpec = ORDERS) -> tuple[int | str, int | str]:
    chunks = _chunked(data, size)
    fast = _outcome(lambda: _count_csv_fast(zone, iter(chunks)))
    strict = _outcome(lambda: _count_csv_records(zone, _decoded_lines(iter(chunks))))
    return fast, strict


def _random_file(rng: random.Random, rare: float, header: bytes = HEADER) -> bytes:
    rows = [header]
    fields = header.count(b",") + 1
    for _ in range(rng.randint(0, 40)):
        if rng.random() < 0.8:  # a well-formed record, most of the time
            values = [rng.choice([b"1", b"x", b"", b"\xc3\xa9"]) for _ in range(fields)]
            rows.append(b",".join(values))
        else:
            rows.append(b"".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12))))
        if rng.random() < rare:
            rows[-1] += rng.choice(RARE)
    ending = rng.choice([b"\n", b"\r\n"])
    return ending.join(rows) + rng.choice([ending, b""])


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(("zone", "header"), [(ORDERS, HEADER), (ONE_COLUMN, b"order_id")])
def test_fast_scan_agrees_with_the_strict_reader_on_random_files(
    seed: int, zone: ZoneSpec, header: bytes
) -> None:
    rng = random.Random(seed)
    outcomes = set()
    for _ in range(250):
        data = _random_file(rng, rare=rng.choice([0.0, 0.02, 0.2]), header=header)
        size = rng.choice([1, 2, 3, 7, 16, 64, 1 << 20])
        fast, strict = _both(data, size, zone)
        assert fast == strict, (data, size)
        outcomes.add(type(fast))
    assert outcomes == {int, str}  # both counts and refusals were compared


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (HEADER + b"\n1,2,3,4,5\n1,2,3,4,5\n", 2),
        (HEADER + b"\r\n1,2,3,4,5\r\n\r\n1,2,3,4,5", 2),  # a blank line is no record
        (HEADER + b"\n1,2,3,4,5\n1,2,3,4\n", "line 3 has 4 fields, the header has 5"),
        (HEADER + b'\n1,2,3,4,"5\n', "quote opened in the record on line 2 never closes"),
        (HEADER + b"\n1,2,3,4,5\r1,2,3,4,5\n", "line 2: new-line character seen"),
        (HEADER + b"\n1,2,3,4,\xff\n", "not valid UTF-8 (byte offset 52"),
        (b"order_id\n1\n\n2\n", "missing contract columns"),
        (b"", "no CSV header"),
        (b"\n1,2\n", "no CSV header"),
    ],
)
def test_fast_scan_counts_and_reasons(data: bytes, expected: int | str) -> None:
    for size in (1, 5, len(data) or 1):
        fast, strict = _both(data, size)
        assert fast == strict
        if isinstance(expected, int):
            assert fast == expected
        else:
            assert expected in str(fast)


def test_a_quote_after_many_plain_chunks_hands_the_rest_to_the_reader() -> None:
    plain = b"".join(b"%d,7,2026-01-01 00:00:00,1.00,new\n" % i for i in range(1000))
    quoted = b'1001,7,2026-01-01 00:00:00,1.00,"new,\nline"\n1002,7,x,1,new\n'
    data = HEADER + b"\n" + plain + quoted
    assert _both(data, 4096) == (1002, 1002)
    broken = HEADER + b"\n" + plain + b"1001,7,x,1\n"
    fast, _ = _both(broken, 4096)
    assert fast == "BadFileError: malformed CSV: line 1002 has 4 fields, the header has 5"
