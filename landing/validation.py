"""Checks a landed file must pass before it is loaded; a failure names the reason for quarantine."""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterable

from landing.identifiers import UnsafeIdentifierError, validate_identifier
from landing.objects import key_problem
from landing.zones import ZoneSpec


class BadFileError(ValueError):
    """The file cannot be loaded as it is; the message is the quarantine reason."""


def check_object(zone: ZoneSpec, key: str, size: int) -> None:
    """Checks that need only the listing: key safety, emptiness, size limit."""
    problem = key_problem(key)
    if problem:
        raise BadFileError(f"unsafe key: {problem}")
    if size == 0:
        raise BadFileError("empty file (0 bytes)")
    if size > zone.max_file_bytes:
        raise BadFileError(f"file is {size} bytes, over the zone limit of {zone.max_file_bytes}")


def _decoded_lines(chunks: Iterable[bytes]) -> Iterable[str]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    pending = ""
    offset = 0
    for chunk in chunks:
        try:
            text = decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            raise BadFileError(
                f"not valid UTF-8 (byte offset {offset + exc.start}: {exc.reason})"
            ) from None
        offset += len(chunk)
        pending += text
        *lines, pending = pending.split("\n")
        yield from lines
    try:
        pending += decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise BadFileError(f"not valid UTF-8 at the end of the file ({exc.reason})") from None
    if pending:
        yield pending


def _check_columns(zone: ZoneSpec, columns: list[str]) -> None:
    for column in columns:
        try:
            validate_identifier(column, "column")
        except UnsafeIdentifierError as exc:
            raise BadFileError(str(exc)) from None
    missing = [c for c in zone.columns if c not in {x.lower() for x in columns}]
    if missing:
        raise BadFileError(f"missing contract columns {missing}; the file has {columns}")


def _count_csv_records(zone: ZoneSpec, lines: Iterable[str]) -> int:
    """Parse strictly (as the loaders will) and count the data records.

    Strict mode matters: a lenient parser reads a quote that never closes as one field running to
    the end of the file, so the file "loads" with every later record folded into one value.
    """
    reader = csv.reader(lines, strict=True)
    record_start = 1  # the line the record being parsed starts on
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise BadFileError("no CSV header")
        _check_columns(zone, [h.strip() for h in header])
        records = 0
        record_start = reader.line_num + 1
        for row in reader:
            if row and len(row) != len(header):
                raise BadFileError(
                    f"malformed CSV: line {record_start} has {len(row)} fields, the header has "
                    f"{len(header)}"
                )
            records += bool(row)
            record_start = reader.line_num + 1
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise BadFileError(
                f"malformed CSV: a quote opened in the record on line {record_start} never closes"
            ) from None
        raise BadFileError(f"malformed CSV: line {reader.line_num}: {exc}") from None
    return records


def check_content(zone: ZoneSpec, chunks: Iterable[bytes]) -> int:
    """Stream the file once: UTF-8, well-formed for its format, contract columns present.

    Returns the number of data records seen (0 for a valid empty export, unless the zone's
    `empty_files: quarantine` refuses it). Types are checked later, against the staged rows.
    """
    records = _check_format(zone, chunks)
    if records == 0 and zone.empty_files == "quarantine":
        what = "a header but no records" if zone.format == "csv" else "no records"
        raise BadFileError(
            f"no rows: the file has {what} (zone {zone.name} sets empty_files: quarantine)"
        )
    return records


def _check_format(zone: ZoneSpec, chunks: Iterable[bytes]) -> int:
    lines = _decoded_lines(chunks)
    if zone.format == "csv":
        return _count_csv_records(zone, lines)
    if zone.format == "jsonl":
        records, keys = 0, set()
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BadFileError(f"malformed JSON on line {line_no}: {exc.msg}") from None
            if not isinstance(record, dict):
                raise BadFileError(f"line {line_no} is not a JSON object")
            keys.update(record)
            records += 1
        if records:  # an empty export has no keys to check; the zone's policy decides on it
            _check_columns(zone, sorted(keys))
        return records
    # parquet: footer-based; read it whole (parquet files are bounded by max_file_bytes)
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(b"".join(chunks)))
    except Exception as exc:  # noqa: BLE001 - any reader failure means "not parquet"
        raise BadFileError(f"malformed parquet: {exc}") from None
    _check_columns(zone, table.column_names)
    return table.num_rows
