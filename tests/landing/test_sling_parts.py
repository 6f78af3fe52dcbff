"""A large CSV is cut at record boundaries and staged by concurrent Sling processes: every record
arrives once, whole, even when quoted fields hold newlines near the cut points."""

from __future__ import annotations

import csv
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest

from devstack import local_stack
from landing import sling_loader
from landing.zones import load_zones

HEADER = ["order_id", "customer_id", "order_ts", "amount", "status"]


def _rows(count: int) -> list[list[str]]:
    # Every third status spans lines and carries quotes, so naive cuts would split it.
    return [
        [str(i), str(i % 17), "2026-10-01 10:00:00", f"{i % 50}.25", 'say "hi"\nnext line']
        if i % 3 == 0
        else [str(i), str(i % 17), "2026-10-01 10:00:00", f"{i % 50}.25", "shipped"]
        for i in range(1, count + 1)
    ]


def _write(path: Path, rows: list[list[str]]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    for row in rows:
        writer.writerow(row)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def _read(paths: list[Path]) -> list[list[str]]:
    records = []
    for path in paths:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            assert next(reader) == HEADER, f"{path.name} lacks the header"
            records.extend(reader)
    return records


@pytest.mark.parametrize("parts", [2, 3, 7])
def test_split_keeps_every_record_whole_and_once(tmp_path: Path, parts: int) -> None:
    source = _write(tmp_path / "orders.csv", _rows(500))
    pieces = sling_loader.split_csv(source, parts, tmp_path)
    assert len(pieces) == parts
    assert _read(pieces) == _read([source])


def test_split_of_a_file_smaller_than_its_parts_still_covers_it(tmp_path: Path) -> None:
    source = _write(tmp_path / "orders.csv", _rows(2))
    pieces = sling_loader.split_csv(source, 8, tmp_path)
    assert 1 <= len(pieces) <= 2
    assert _read(pieces) == _read([source])


def test_parallel_sling_stage_holds_every_row_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_stack.ensure_duckdb_extensions()  # Sling's DuckDB target loads them, offline
    zone = next(z for z in load_zones() if z.name == "orders")
    rows = _rows(3000)
    source = _write(tmp_path / "orders.csv", rows)
    monkeypatch.setattr(sling_loader, "PARALLEL_MIN_BYTES", source.stat().st_size // 3)
    monkeypatch.setattr(sling_loader.os, "sched_getaffinity", lambda _pid: {0, 1})

    work = tmp_path / "work"
    work.mkdir()
    stage = sling_loader.stage_object(zone, source, work, log=lambda _line: None)

    assert stage.parts == 2 and stage.rows == len(rows)
    con = duckdb.connect(str(stage.path), read_only=True)
    try:
        staged = con.execute(
            "SELECT order_id, status FROM main.stage ORDER BY order_id::BIGINT"
        ).fetchall()
    finally:
        con.close()
    assert [(r[0], r[4]) for r in rows] == staged


def test_a_stuck_sling_run_is_stopped_and_raised_as_transient(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zone = next(z for z in load_zones() if z.name == "orders")
    source = _write(tmp_path / "orders.csv", _rows(10))
    # A limit no Sling start-up can meet stands in for a run that never ends.
    monkeypatch.setattr(sling_loader, "SLING_TIMEOUT_BASE_SECONDS", 0.01)
    monkeypatch.setattr(sling_loader, "SLING_MIN_BYTES_PER_SECOND", 10**12)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(sling_loader.SlingRunError, match="stopped"):
        sling_loader.stage_object(zone, source, work, log=lambda _line: None)


def test_objects_staged_at_the_same_moment_keep_their_own_rows(tmp_path: Path) -> None:
    """Sling's DuckDB target batches through `$TMPDIR/duckdb/import/<table>_sling_duckdb_tmp/
    <start ms>`: with one shared temp dir, two objects of a zone staged in the same millisecond
    loaded each other's rows. Each Sling process now has its own, inside the object's folder."""
    local_stack.ensure_duckdb_extensions()
    zone = next(z for z in load_zones() if z.name == "orders")
    objects = 6
    start = threading.Barrier(objects)

    def stage(n: int) -> list[str]:
        folder = tmp_path / f"object-{n}"
        folder.mkdir()
        rows = [[str(n * 100 + i), "1", "2026-10-01 10:00:00", "1.25", "shipped"] for i in range(3)]
        source = _write(folder / "orders.csv", rows)
        start.wait()  # as the ingestion step's pool does: every object at once
        staged = sling_loader.stage_object(zone, source, folder, log=lambda _line: None)
        assert list((folder / "sling-0" / "tmp" / "duckdb" / "import").iterdir())
        con = duckdb.connect(str(staged.path), read_only=True)
        try:
            return [
                r[0] for r in con.execute("SELECT order_id FROM main.stage ORDER BY 1").fetchall()
            ]
        finally:
            con.close()

    with ThreadPoolExecutor(max_workers=objects) as pool:
        staged = list(pool.map(stage, range(objects)))
    assert staged == [[str(n * 100 + i) for i in range(3)] for n in range(objects)]


def _first_sling_timeout_too_short(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first Sling process gets a timeout no run can meet (a stuck process), the rest the
    real one."""
    real_timeout = sling_loader._timeout
    timeouts = iter([0.001])
    monkeypatch.setattr(
        sling_loader, "_timeout", lambda *a: next(timeouts, None) or real_timeout(*a)
    )


def test_a_stuck_sling_process_is_started_once_more_and_its_part_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Sling process that outlives its timeout is stopped and its part staged by a fresh
    process, before the step's own retry. The first timeout here is too short for any run."""
    local_stack.ensure_duckdb_extensions()
    zone = next(z for z in load_zones() if z.name == "orders")
    rows = [[str(i), "1", "2026-10-01 10:00:00", "1.25", "shipped"] for i in range(3)]
    source = _write(tmp_path / "orders.csv", rows)
    _first_sling_timeout_too_short(monkeypatch)
    lines: list[str] = []
    staged = sling_loader.stage_object(zone, source, tmp_path, log=lines.append)
    assert staged.rows == 3
    assert any("starting it again" in line for line in lines), lines
    with duckdb.connect(str(staged.path), read_only=True) as con:
        loaded = con.execute(f"SELECT count(*) FROM {sling_loader.SCRATCH_TABLE}").fetchone()
    assert loaded == (3,)


def test_a_stuck_sling_process_staging_into_the_warehouse_is_started_once_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same restart on the path that stages into the warehouse's own table (Snowflake in
    production; a DuckDB file stands in for the connection here)."""
    local_stack.ensure_duckdb_extensions()
    zone = next(z for z in load_zones() if z.name == "orders")
    rows = [[str(i), "1", "2026-10-01 10:00:00", "1.25", "shipped"] for i in range(4)]
    source = _write(tmp_path / "orders.csv", rows)
    _first_sling_timeout_too_short(monkeypatch)
    target = tmp_path / "warehouse.duckdb"
    connection = {"type": "duckdb", "instance": str(target), "copy_method": "csv_files"}
    lines: list[str] = []
    inserted = sling_loader.stage_into_table(
        zone, source, tmp_path, connection, "main.stage", {}, log=lines.append
    )
    assert inserted == 4
    assert any("starting it again" in line for line in lines), lines
    with duckdb.connect(str(target), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM main.stage").fetchone() == (4,)
