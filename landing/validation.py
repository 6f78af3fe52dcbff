"""Checks a landed file must pass before it is loaded; a failure names the reason for quarantine."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
from collections.abc import Iterable
from pathlib import Path

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


def _decoded_lines(chunks: Iterable[bytes], offset: int = 0) -> Iterable[str]:
    """The text lines of `chunks` (split on LF, each keeping a CR before it), decoded strictly;
    `offset` is the byte offset of the first chunk in the file, for the error message."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    pending = ""
    for chunk in chunks:
        pending += _decode(decoder, chunk, offset)
        offset += len(chunk)
        *lines, pending = pending.split("\n")
        yield from lines
    pending += _decode(decoder, b"", None)
    if pending:
        yield pending


def _decode(decoder: codecs.IncrementalDecoder, chunk: bytes, offset: int | None) -> str:
    """`chunk` decoded strictly, or the quarantine reason naming where; `offset` is the chunk's
    byte offset in the file, None for the end of the file (what the decoder still holds)."""
    try:
        return decoder.decode(chunk, final=offset is None)
    except UnicodeDecodeError as exc:
        if offset is None:
            raise BadFileError(f"not valid UTF-8 at the end of the file ({exc.reason})") from None
        raise BadFileError(
            f"not valid UTF-8 (byte offset {offset + exc.start}: {exc.reason})"
        ) from None


def _check_columns(zone: ZoneSpec, columns: list[str]) -> None:
    """Every column (a CSV header after the zone's `source_columns`) is a safe identifier,
    none twice, and the contract's columns are all there."""
    names = [zone.warehouse_column(c) for c in columns]
    for header, column in zip(columns, names, strict=True):
        try:
            validate_identifier(column, "column")
        except UnsafeIdentifierError as exc:
            hint = (
                f"; map it to a warehouse column under source_columns in {zone.source_file}"
                if zone.format == "csv" and header == column
                else ""
            )
            raise BadFileError(f"{exc}{hint}") from None
    lowered = [n.lower() for n in names]
    doubled = sorted({n for n in lowered if lowered.count(n) > 1})
    if doubled:
        raise BadFileError(f"column(s) {doubled} appear more than once; the file has {columns}")
    missing = [c for c in zone.columns if c not in lowered]
    if missing:
        mapped = f" (after source_columns: {names})" if zone.source_columns else ""
        raise BadFileError(f"missing contract columns {missing}; the file has {columns}{mapped}")


def _count_csv_records(
    zone: ZoneSpec, lines: Iterable[str], header: list[str] | None = None, first_line: int = 1
) -> int:
    """Parse strictly (as the loaders will) and count the data records.

    Strict mode matters: a lenient parser reads a quote that never closes as one field running to
    the end of the file, so the file "loads" with every later record folded into one value.
    `header` is given when the lines start after it; `first_line` numbers their first line.
    """
    reader = csv.reader(lines, strict=True)
    offset = first_line - 1  # lines before the reader's first line
    record_start = first_line  # the line the record being parsed starts on
    try:
        if header is None:
            header = _checked_header(zone, next(reader, None))
            record_start = offset + reader.line_num + 1
        records = 0
        for row in reader:
            if row and len(row) != len(header):
                raise BadFileError(
                    f"malformed CSV: line {record_start} has {len(row)} fields, the header has "
                    f"{len(header)}"
                )
            records += bool(row)
            record_start = offset + reader.line_num + 1
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise BadFileError(
                f"malformed CSV: a quote opened in the record on line {record_start} never closes"
            ) from None
        raise BadFileError(f"malformed CSV: line {offset + reader.line_num}: {exc}") from None
    return records


def _unquoted(chunk: bytes) -> bool:
    """Bytes whose every LF-ended line is one CSV record of (commas + 1) fields: no quote, no
    NUL (the csv module refuses it) and no CR but before an LF (a CR alone ends a line there)."""
    return (
        b'"' not in chunk
        and b"\0" not in chunk
        # `in` is a memchr, counting is not: most exports have no CR at all
        and (b"\r" not in chunk or chunk.count(b"\r") == chunk.count(b"\r\n"))
    )


def _count_csv_fast(zone: ZoneSpec, chunks: Iterable[bytes]) -> int:
    """`_count_csv_records` over the file's bytes, with the same counts and messages, at about
    4x its speed on the usual export that quotes nothing.

    While the bytes hold no quote, whole chunks of lines are checked with bytes operations:
    every line has the header's number of commas, or the chunk's lines go through the strict
    reader. From the first chunk that is not `_unquoted` (a quoted field may span lines), the
    strict reader reads the rest of the file. Tested against the strict reader alone.
    """
    chunks = iter(chunks)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    offset = 0  # bytes of the file decoded so far
    pending = b""  # the start of a line not yet ended
    header: list[str] | None = None
    line = 1  # the number of the next line to count
    records = 0

    def strict(lines: list[bytes]) -> int:
        text = [part.decode("utf-8") for part in lines]  # already checked by the decoder
        return _count_csv_records(zone, text, header, first_line=line)

    for chunk in chunks:
        if not _unquoted(chunk):
            rest = itertools.chain([pending, chunk], chunks)
            return records + _count_csv_records(
                zone, _decoded_lines(rest, offset - len(pending)), header, first_line=line
            )
        _decode(decoder, chunk, offset)
        offset += len(chunk)
        ended = pending + chunk
        cut = ended.rfind(b"\n") + 1
        ended, pending = ended[:cut], ended[cut:]
        if header is None and ended:
            first = ended[: ended.index(b"\n")]
            header = _checked_header(zone, next(csv.reader([first.decode("utf-8")], strict=True)))
            ended, line = ended[len(first) + 1 :], line + 1
        if header is not None and ended:
            commas = len(header) - 1
            # the reader skips a blank line, which with a one-column header has the right
            # commas: those files take the strict reader
            regular = _regular_lines(ended, commas) if commas else None
            if regular is not None:
                records += regular
                line += regular
            else:
                lines = ended.split(b"\n")[:-1]
                records += strict(lines)
                line += len(lines)
    _decode(decoder, b"", None)
    if header is None:
        return _count_csv_records(zone, [pending.decode("utf-8")] if pending else [])
    return records + (strict([pending]) if pending else 0)


def _regular_lines(ended: bytes, commas: int) -> int | None:
    """The number of LF-ended lines in `ended` if every one holds `commas` commas, else None.
    Vectorised: 1M lines in 0.1 s, against 0.2 s counting each line's commas in Python."""
    import numpy as np  # on first use: loading a code location's definitions needs no numpy

    data = np.frombuffer(ended, dtype=np.uint8)
    ends = np.flatnonzero(data == ord("\n"))
    # commas before each line end, minus those before the previous one
    per_line = np.diff(np.searchsorted(np.flatnonzero(data == ord(",")), ends), prepend=0)
    return len(ends) if bool((per_line == commas).all()) else None


def _checked_header(zone: ZoneSpec, header: list[str] | None) -> list[str]:
    if not header or not any(h.strip() for h in header):
        raise BadFileError("no CSV header")
    _check_columns(zone, [h.strip() for h in header])
    return header


class HeaderRenamer:
    """Rewrites a CSV's first line to the zone's warehouse column names while the file is
    copied: every loader (DuckDB's read_csv, Sling into DuckDB or Snowflake) then reads the
    same identifiers, and a header like `Culmen Length (mm)` never reaches SQL or Sling (whose
    own renaming is version-dependent). The rest of the file passes through byte for byte."""

    def __init__(self, zone: ZoneSpec) -> None:
        self._zone = zone
        self._pending: bytes | None = b"" if zone.source_columns else None

    def feed(self, chunk: bytes) -> bytes:
        if self._pending is None:
            return chunk
        self._pending += chunk
        end = self._pending.find(b"\n")
        if end == -1:
            return b""
        head, rest = self._pending[: end + 1], self._pending[end + 1 :]
        self._pending = None
        return self._renamed(head) + rest

    def close(self) -> bytes:
        """What is still held back: a file whose only line is its header."""
        head, self._pending = self._pending, None
        return self._renamed(head) if head else b""

    def _renamed(self, line: bytes) -> bytes:
        try:
            text = line.decode("utf-8")
            fields = next(csv.reader([text.rstrip("\r\n")], strict=True))
        except (UnicodeDecodeError, csv.Error, StopIteration):
            return line  # not a plain one-line header: the validator names what is wrong
        ending = text[len(text.rstrip("\r\n")) :]
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(
            [self._zone.warehouse_column(f) for f in fields]
        )
        return (out.getvalue() + ending).encode("utf-8")


def first_line_with(path: Path, column: str, value: str) -> int | None:
    """The line (1 = the header) of the first CSV record whose `column` holds `value`: where
    a quarantined file's bad value sits. The local copy's header holds warehouse names."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip().lower() for h in next(reader, [])]
        if column not in header:
            return None
        index = header.index(column)
        start = reader.line_num + 1
        for row in reader:
            if len(row) > index and row[index] == value:
                return start
            start = reader.line_num + 1
    return None


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
    if zone.format == "csv":
        return _count_csv_fast(zone, chunks)
    lines = _decoded_lines(chunks)
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
