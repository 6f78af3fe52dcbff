"""What `dg dev` / `dg check defs` load for the ml location: orchestration.ml, unchanged."""

from orchestration.ml import defs

__all__ = ["defs"]
