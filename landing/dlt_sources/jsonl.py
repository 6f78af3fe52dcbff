"""dlt source for nested JSON-lines zones (the clickstream).

dlt flattens nested objects into `parent__child` columns and normalises lists into child
tables (`events.items` -> `events__items`, linked by `_dlt_parent_id`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import dlt


def records_of(
    lines: Iterable[str], source: tuple[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    """The JSON objects of a file's lines; `source` (field, value) tags each with its file when
    several files load in one pipeline run."""
    for line in lines:
        if line.strip():
            record = json.loads(line)
            if source is not None:
                record[source[0]] = source[1]
            yield record


@dlt.source(name="landing_jsonl", max_table_nesting=2)
def jsonl_source(records: Iterable[dict[str, Any]], table_name: str, timestamp_columns: list[str]):
    """One resource named after the raw table; timestamps hinted so they never land as text."""
    yield dlt.resource(
        records,
        name=table_name,
        write_disposition="append",
        columns={column: {"data_type": "timestamp"} for column in timestamp_columns},
    )
