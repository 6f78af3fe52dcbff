"""A landed object's bytes as the validator and the loaders read them: compression detected by
its content (magic bytes, never the name) and undone while streaming, a UTF-8 byte-order mark
dropped. Applied while downloading to the local copy, so the bytes loaded are still the bytes
validated, and Sling and dlt only ever read plain text.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import IO

from landing.validation import BadFileError


class ContentError(BadFileError):
    """The bytes themselves cannot be made plain text (the message names the compression or the
    encoding); other BadFileErrors found in decompressed content are about what it holds."""


UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = {b"\xff\xfe": "UTF-16 little-endian", b"\xfe\xff": "UTF-16 big-endian"}
READ_BYTES = 1 << 20

Opener = Callable[[IO[bytes]], IO[bytes]]
# name -> (how the stream starts, a file-like decompressor over it, or None: refused by name).
# The signatures are long enough that no CSV or JSON text starts with one (bzip2's "BZh" alone
# could). The standard library's readers handle concatenated members and report a truncated
# stream. zstd has no decoder in Python 3.11's standard library and `zstandard` is not a
# dependency, so a zstd file is quarantined naming it; a zip is an archive of files, not one.
COMPRESSIONS: dict[str, tuple[re.Pattern[bytes], Opener | None]] = {
    "gzip": (re.compile(rb"\x1f\x8b\x08"), lambda raw: gzip.GzipFile(fileobj=raw)),
    "bzip2": (re.compile(rb"BZh[1-9](1AY&SY|\x17rE8P\x90)"), bz2.BZ2File),
    "xz": (re.compile(rb"\xfd7zXZ\x00"), lzma.LZMAFile),
    "zstd": (re.compile(rb"\x28\xb5\x2f\xfd"), None),
    "zip": (re.compile(rb"PK\x03\x04"), None),
}
DECOMPRESSED = tuple(name for name, (_, opener) in COMPRESSIONS.items() if opener)
_MAGIC_BYTES = 10  # the longest signature above


def detect_compression(head: bytes) -> str | None:
    """The compression the first bytes announce, or None for a plain file."""
    return next((name for name, (magic, _) in COMPRESSIONS.items() if magic.match(head)), None)


class _SourceError(Exception):
    """An error of the download itself (network), kept apart from a corrupt stream: it is
    re-raised as it was, so the step retries instead of quarantining a good file."""


class _ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._buffer = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            try:
                chunk = next(self._chunks, None)
            except Exception as exc:  # noqa: BLE001 - handed back unchanged, see _SourceError
                raise _SourceError() from exc
            if chunk is None:
                return 0
            self._buffer = chunk
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def _decompressed(name: str, opener: Opener, chunks: Iterator[bytes]) -> Iterator[bytes]:
    try:
        with opener(io.BufferedReader(_ChunkReader(chunks), READ_BYTES)) as plain:
            while block := plain.read(READ_BYTES):
                yield block
    except _SourceError as exc:
        raise exc.__cause__ from None  # type: ignore[misc]
    except EOFError:
        raise ContentError(f"{name}-compressed but truncated: the stream ends early") from None
    except (OSError, zlib.error, lzma.LZMAError) as exc:
        raise ContentError(f"{name}-compressed but corrupt: {exc}") from None


def _take(chunks: Iterator[bytes], size: int) -> bytes:
    """At least `size` bytes from the front of the stream (fewer only if it ends first)."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= size:
            break
    return head


def _prepend(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if head:
        yield head
    yield from rest


class PlainContent:
    """The plain bytes of a landed object, streamed; after iterating, `compression` names what
    was undone and `bom_stripped` says whether a UTF-8 byte-order mark was dropped.

    `text`: the zone's format is text (CSV, JSONL), so a byte-order mark is looked for.
    `max_bytes`: the zone's size limit, applied to the decompressed bytes as well.
    """

    def __init__(self, chunks: Iterable[bytes], *, text: bool, max_bytes: int) -> None:
        self._chunks = iter(chunks)
        self._text, self._max_bytes = text, max_bytes
        self.compression: str | None = None
        self.bom_stripped = False

    def __iter__(self) -> Iterator[bytes]:
        head = _take(self._chunks, _MAGIC_BYTES)
        stream = _prepend(head, self._chunks)
        self.compression = detect_compression(head)
        if self.compression:
            opener = COMPRESSIONS[self.compression][1]
            if opener is None:
                what = (
                    "a zip archive"
                    if self.compression == "zip"
                    else f"{self.compression}-compressed"
                )
                raise ContentError(
                    f"{what} (detected by its first bytes): Landfall decompresses "
                    f"{', '.join(DECOMPRESSED)} only; upload it as one of those or uncompressed"
                )
            stream = self._limited(_decompressed(self.compression, opener, stream))
        yield from self._without_bom(stream) if self._text else stream

    def _without_bom(self, stream: Iterator[bytes]) -> Iterator[bytes]:
        head = _take(stream, len(UTF8_BOM))
        for bom, encoding in _UTF16_BOMS.items():
            if head.startswith(bom):
                raise ContentError(f"{encoding} text (its byte-order mark); Landfall reads UTF-8")
        if head.startswith(UTF8_BOM):
            head, self.bom_stripped = head[len(UTF8_BOM) :], True
        yield from _prepend(head, stream)

    def _limited(self, stream: Iterator[bytes]) -> Iterator[bytes]:
        seen = 0
        for chunk in stream:
            seen += len(chunk)
            if seen > self._max_bytes:
                raise ContentError(
                    f"{self.compression}-compressed file decompresses to over the zone limit of "
                    f"{self._max_bytes} bytes"
                )
            yield chunk
