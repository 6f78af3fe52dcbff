"""A landed object: one S3 object version, the unit of ingestion (one dynamic partition)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

MAX_KEY_CHARS = 1024
_FORBIDDEN_IN_PARTITION_KEYS = ("...",)  # Dagster reserves "..." for partition ranges


@dataclass(frozen=True)
class LandedObject:
    zone: str
    key: str
    etag: str
    size: int
    last_modified: datetime

    @property
    def partition_key(self) -> str:
        return self.key

    @property
    def run_key(self) -> str:
        """Key + ETag: a re-upload with new content is a new version and runs again."""
        return f"{self.key}@{self.etag}"


def clean_etag(etag: str) -> str:
    return etag.strip('"')


def key_problem(key: str) -> str | None:
    """Why a key cannot be a partition key (None when it can)."""
    if len(key) > MAX_KEY_CHARS:
        return f"key longer than {MAX_KEY_CHARS} characters"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        return "key contains control characters"
    for bad in _FORBIDDEN_IN_PARTITION_KEYS:
        if bad in key:
            return f"key contains {bad!r}"
    return None


def short_hash(text: str, length: int = 12) -> str:
    """A stable identifier-safe token for names derived from keys (staging tables, pipelines)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]
