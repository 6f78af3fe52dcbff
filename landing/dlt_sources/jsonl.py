"""dlt source for nested JSON-lines zones (the clickstream).

dlt flattens nested objects into `parent__child` columns and normalises lists into child
tables (`events.items` -> `events__items`, linked by `_dlt_parent_id`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import dlt


def _records(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if line.strip():
            yield json.loads(line)


@dlt.source(name="landing_jsonl", max_table_nesting=2)
def jsonl_source(lines: Iterable[str], table_name: str, timestamp_columns: list[str]):
    """One resource named after the raw table; timestamps hinted so they never land as text."""
    yield dlt.resource(
        _records(lines),
        name=table_name,
        write_disposition="append",
        columns={column: {"data_type": "timestamp"} for column in timestamp_columns},
    )
