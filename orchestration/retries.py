"""Retry policies per asset kind: exponential backoff with jitter (run retries have none)."""

from __future__ import annotations

import dagster as dg

# Steps that talk to S3 or the warehouse fail transiently (throttling, a held file lock).
IO_RETRY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
