"""What `dg dev` and `dg check defs` load for the ingestion location: orchestration.ingestion."""

from orchestration.ingestion import defs

__all__ = ["defs"]
