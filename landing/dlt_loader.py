"""Run the dlt source for landed objects (one, or all of a run's) into a staging dataset of the
warehouse.

Each run gets its own pipeline name and working directory, so two partitions loading at once
never share pipeline state (dagster #21022).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from landing.raw_load import StagedTable
from landing.zones import ZoneSpec


@dataclass(frozen=True)
class DltRunResult:
    staged: list[StagedTable]
    rows: dict[str, int]
    seconds: float


def run_pipeline(
    zone: ZoneSpec,
    records: Iterable[dict[str, Any]],
    stage_schema: str,
    destination: object,
    token: str,
    shared: bool = False,
) -> DltRunResult:
    """Load the records into `stage_schema` of `destination` (a dlt destination: DuckDB's
    locally, Snowflake's in production).

    `shared`: the records of several objects, each tagged with its source (a shared stage).
    Child rows then carry their root row's `_dlt_id` (dlt's root key) so each object's child
    rows are found through its root rows."""
    import dlt  # heavy: imported only by the runs that use it, not by every code-server load

    from landing.dlt_sources.jsonl import jsonl_source

    timestamps = [c for c, t in zone.columns.items() if t.startswith("timestamp")]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="landfall-dlt-") as pipelines_dir:
        pipeline = dlt.pipeline(
            pipeline_name=f"landfall_{zone.name}_{token}",
            pipelines_dir=pipelines_dir,
            destination=destination,
            dataset_name=stage_schema,
        )
        source = jsonl_source(records, zone.table_name, timestamps)
        if shared:
            source.root_key = True
        pipeline.run(source)
        row_counts = dict(pipeline.last_trace.last_normalize_info.row_counts)
    tables = [zone.table_name, *zone.child_tables]
    root = zone.table_name if shared else None
    staged = [
        StagedTable(t, stage_schema, t, root_table=root if t != zone.table_name else None)
        for t in tables
        if row_counts.get(t)
    ]
    return DltRunResult(
        staged=staged,
        rows={t: int(row_counts.get(t, 0)) for t in tables},
        seconds=time.monotonic() - started,
    )
