"""What `dg dev` / `dg check defs` load for the transformation location: orchestration.transformation, unchanged."""

from orchestration.transformation import defs

__all__ = ["defs"]
