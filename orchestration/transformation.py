"""Code location `transformation`: the dbt project (raw -> staging -> intermediate -> marts)."""

from orchestration.transformation_definitions import build_definitions

defs = build_definitions()

__all__ = ["build_definitions", "defs"]
