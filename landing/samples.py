"""Deterministic sample data for the shop domain: what the upstream systems would drop.

Same seed and sizes -> byte-identical files. Used by `make dev`/`make demo`, tests and benchmarks.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

REFERENCE_TIME = datetime(2026, 11, 1)  # fixed, so data never depends on the clock
HISTORY_DAYS = 180
COUNTRIES = ("DE", "FR", "GB", "NL", "US", "ES", "IT", "SE")
STATUSES = ("placed", "shipped", "shipped", "shipped", "cancelled", "returned")
EVENT_TYPES = ("page_view", "page_view", "page_view", "add_to_cart", "checkout")
DEVICES = (("ios", "safari"), ("android", "chrome"), ("macos", "safari"), ("windows", "edge"))


def _ts(rng: random.Random) -> datetime:
    seconds = rng.randrange(HISTORY_DAYS * 86_400)
    return REFERENCE_TIME - timedelta(seconds=seconds)


def customers_csv(customer_ids: range, seed: int) -> bytes:
    rng = random.Random(f"customers-{seed}-{customer_ids.start}")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["customer_id", "name", "email", "country", "signup_ts"])
    for cid in customer_ids:
        signup = REFERENCE_TIME - timedelta(days=HISTORY_DAYS + rng.randrange(365))
        writer.writerow(
            [
                cid,
                f"Customer {cid}",
                f"customer{cid}@example.com",
                rng.choice(COUNTRIES),
                signup.strftime("%Y-%m-%d %H:%M:%S"),
            ]
        )
    return out.getvalue().encode()


def order_rows(order_ids: range, customers: int, seed: int) -> Iterator[list[object]]:
    rng = random.Random(f"orders-{seed}-{order_ids.start}")
    for oid in order_ids:
        yield [
            oid,
            rng.randint(1, customers),
            _ts(rng).strftime("%Y-%m-%d %H:%M:%S"),
            f"{rng.uniform(5, 250):.2f}",
            rng.choice(STATUSES),
        ]


ORDER_HEADER = ["order_id", "customer_id", "order_ts", "amount", "status"]


def orders_csv(order_ids: range, customers: int, seed: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ORDER_HEADER)
    writer.writerows(order_rows(order_ids, customers, seed))
    return out.getvalue().encode()


def events_jsonl(event_ids: range, customers: int, seed: int) -> bytes:
    rng = random.Random(f"events-{seed}-{event_ids.start}")
    lines = []
    for eid in event_ids:
        event_type = rng.choice(EVENT_TYPES)
        os_name, browser = rng.choice(DEVICES)
        items = (
            [
                {
                    "sku": f"SKU-{rng.randint(1, 40):03d}",
                    "qty": rng.randint(1, 3),
                    "price": round(rng.uniform(3, 120), 2),
                }
                for _ in range(rng.randint(1, 3))
            ]
            if event_type in ("add_to_cart", "checkout")
            else []
        )
        lines.append(
            json.dumps(
                {
                    "event_id": f"evt-{eid:08d}",
                    "customer_id": rng.randint(1, customers),
                    "event_ts": _ts(rng).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "event_type": event_type,
                    "session": {
                        "id": f"s-{rng.randrange(10**8):08d}",
                        "device": {"os": os_name, "browser": browser},
                    },
                    "items": items,
                },
                separators=(",", ":"),
            )
        )
    return ("\n".join(lines) + "\n").encode()


def _split(total: int, parts: int, start: int = 1) -> list[range]:
    size = -(-total // parts)
    return [range(s, min(s + size, start + total)) for s in range(start, start + total, size)]


def sample_files(
    seed: int = 7,
    customers: int = 50,
    orders: int = 400,
    events: int = 300,
    files_per_zone: int = 2,
    batch: str = "2026-11-01",
) -> dict[str, bytes]:
    """Object key -> content for one drop of every zone."""
    files: dict[str, bytes] = {}
    for i, ids in enumerate(_split(customers, files_per_zone), start=1):
        files[f"customers/{batch}/customers_{i:04d}.csv"] = customers_csv(ids, seed)
    for i, ids in enumerate(_split(orders, files_per_zone), start=1):
        files[f"orders/{batch}/orders_{i:04d}.csv"] = orders_csv(ids, customers, seed)
    for i, ids in enumerate(_split(events, files_per_zone), start=1):
        files[f"events/{batch}/events_{i:04d}.jsonl"] = events_jsonl(ids, customers, seed)
    return files


def write_orders_csv(path: Path, rows: int, customers: int = 100_000, seed: int = 7) -> Path:
    """A large orders file for benchmarks (e.g. 1M rows), streamed to disk."""
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(ORDER_HEADER)
        for chunk in _split(rows, max(1, rows // 100_000)):
            writer.writerows(order_rows(chunk, customers, seed))
    return path
