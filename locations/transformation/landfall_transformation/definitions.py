"""What `dg dev` and `dg check defs` load for this location: orchestration.transformation."""

from orchestration.transformation import defs

__all__ = ["defs"]
