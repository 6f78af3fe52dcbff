"""What `dg dev` / `dg check defs` load for the ingestion location: orchestration.ingestion, unchanged."""

from orchestration.ingestion import defs

__all__ = ["defs"]
