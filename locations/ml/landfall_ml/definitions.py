"""What `dg dev` and `dg check defs` load for the ml location: orchestration.ml."""

from orchestration.ml import defs

__all__ = ["defs"]
