"""A landed object's bytes before validation: compression recognised by content and undone, a
UTF-8 byte-order mark dropped, anything else refused with a reason that names it."""

from __future__ import annotations

import bz2
import gzip
import lzma
import re

import pytest

from landing.content import PlainContent, detect_compression
from landing.validation import BadFileError

TEXT = b"order_id,status\n1,placed\n2,shipped\n"


def _plain(data: bytes, chunk: int = 3, max_bytes: int = 10_000) -> tuple[bytes, PlainContent]:
    content = PlainContent(
        (data[i : i + chunk] for i in range(0, len(data), chunk)), text=True, max_bytes=max_bytes
    )
    return b"".join(content), content


@pytest.mark.parametrize(
    ("compress", "name"),
    [
        (gzip.compress, "gzip"),
        (lambda d: gzip.compress(d[:10]) + gzip.compress(d[10:]), "gzip"),  # two members
        (bz2.compress, "bzip2"),
        (lzma.compress, "xz"),
        (lambda d: d, None),
    ],
)
def test_compressed_text_comes_out_plain_without_its_bom(compress, name) -> None:
    # one byte per chunk: the signature and the byte-order mark are split across chunks
    plain, content = _plain(compress(b"\xef\xbb\xbf" + TEXT), chunk=1)
    assert plain == TEXT
    assert (content.compression, content.bom_stripped) == (name, True)


def test_a_plain_file_without_bom_is_passed_through_unchanged() -> None:
    plain, content = _plain(TEXT)
    assert plain == TEXT and content.compression is None and not content.bom_stripped


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x28\xb5\x2f\xfd" + b"\x00" * 20, "zstd-compressed (detected by its first bytes)"),
        (b"PK\x03\x04" + b"\x00" * 20, "a zip archive (detected by its first bytes)"),
        (gzip.compress(TEXT, mtime=0)[:-12], "gzip-compressed but truncated"),
        (b"\x1f\x8b\x08\x00" + b"\xff" * 40, "gzip-compressed but"),
        (bz2.compress(TEXT)[:20], "bzip2-compressed but"),
        (gzip.compress(TEXT * 100, mtime=0), "decompresses to over the zone limit of 1000 bytes"),
        (b"\xff\xfe" + "a,b\n".encode("utf-16-le"), "UTF-16 little-endian text"),
        (b"\xfe\xff" + "a,b\n".encode("utf-16-be"), "UTF-16 big-endian text"),
    ],
)
def test_what_cannot_be_read_is_refused_naming_why(data: bytes, reason: str) -> None:
    with pytest.raises(BadFileError, match=re.escape(reason)):
        _plain(data, max_bytes=1000)


def test_a_download_error_inside_a_compressed_stream_is_raised_as_itself() -> None:
    """A network failure must stay a (retried) error, never become a "corrupt file" quarantine."""
    data = gzip.compress(TEXT * 1000)

    def chunks():
        yield data[:50]
        raise ConnectionResetError("connection reset by peer")

    with pytest.raises(ConnectionResetError):
        b"".join(PlainContent(chunks(), text=True, max_bytes=10**9))


def test_text_that_merely_starts_like_a_signature_is_not_compressed() -> None:
    assert detect_compression(b"BZh,name\n1,x\n") is None  # bzip2 needs its block magic too
    assert detect_compression(b"PK,value\n") is None
