"""Reaction sensors as a Dagster component: the entries of sensors/reactions.yaml for one
code location, schema-checked (sensors.reactions.ReactionSpec) with errors at the line."""

from __future__ import annotations

from typing import Literal

import dagster as dg

from common.settings import PROJECT_ROOT
from sensors.reactions import REACTIONS_FILE, ReactionSpec, build_reaction_sensor, load_reactions


class ReactionSensorsComponent(dg.Component, dg.Model, dg.Resolvable):
    """'When asset X materializes, notify and/or run job Y', one sensor per entry."""

    location: Literal["ingestion", "transformation", "ml"]
    reactions_file: str = str(REACTIONS_FILE.relative_to(PROJECT_ROOT))

    def specs(self) -> list[ReactionSpec]:
        return load_reactions(PROJECT_ROOT / self.reactions_file)

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return dg.Definitions(
            sensors=[build_reaction_sensor(s) for s in self.specs() if s.location == self.location]
        )


def reaction_sensors(location: Literal["ingestion", "transformation", "ml"]) -> list:
    """The location's reaction sensors (what each Definitions module adds to its sensors)."""
    defs = dg.build_defs_for_component(ReactionSensorsComponent(location=location))
    return list(defs.sensors or [])
