"""A landed object: one S3 object version, the unit of ingestion (one dynamic partition)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote

MAX_KEY_BYTES = 1024  # S3's own limit


@dataclass(frozen=True)
class LandedObject:
    zone: str
    key: str
    etag: str
    size: int
    last_modified: datetime

    @property
    def partition_key(self) -> str:
        return partition_key_for(self.key)

    @property
    def run_key(self) -> str:
        """Key + ETag: a re-upload with new content is a new version and runs again."""
        return f"{self.key}@{self.etag}"


def clean_etag(etag: str) -> str:
    return etag.strip('"')


def partition_key_for(key: str) -> str:
    """The object key as a Dagster partition key: unchanged for ordinary keys, reversibly
    %-escaped where Dagster refuses characters (control characters, "..." is its range syntax).

    Keys never reach SQL or a file path, so quotes, `;`, `--`, spaces and unicode stay as they are.
    """
    escaped = "".join(
        f"%{ord(ch):02X}" if ord(ch) < 32 or ord(ch) == 127 or ch == "%" else ch for ch in key
    )
    while "..." in escaped:
        escaped = escaped.replace("...", "%2E..", 1)
    return escaped


def object_key_for(partition_key: str) -> str:
    """Inverse of `partition_key_for`."""
    return unquote(partition_key)


def key_problem(key: str) -> str | None:
    """Why a key cannot be loaded at all (None when it can)."""
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return f"key longer than {MAX_KEY_BYTES} bytes"
    if key.endswith("/"):
        return "key names a folder"
    return None


def short_hash(text: str, length: int = 12) -> str:
    """A stable identifier-safe token for names derived from keys (staging tables, pipelines)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]
