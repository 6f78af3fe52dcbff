"""Reaction sensors from sensors/reactions.yaml: "when asset X materializes, notify and/or
run job Y". Each is a Dagster asset sensor, so it keeps a cursor and fires once per update."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from common.yaml_config import YamlConfigError, load_yaml_file
from landing.identifiers import validate_identifier
from sensors.notifications import deliver

REACTIONS_FILE = Path(__file__).resolve().parent / "reactions.yaml"


class ReactionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    location: Literal["ingestion", "transformation", "ml"]
    when_materialized: str
    notify: bool = False
    run_job: str | None = None

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, value: str) -> str:
        return validate_identifier(value, "reaction name")

    @model_validator(mode="after")
    def _does_something(self) -> ReactionSpec:
        if not self.notify and not self.run_job:
            raise ValueError("a reaction needs notify: true or a run_job")
        return self


class ReactionsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reactions: list[ReactionSpec] | None = None  # `reactions:` with nothing under it


class ReactionConfigError(YamlConfigError):
    """reactions.yaml is invalid; the message names the file, the line, the field and why."""


def load_reactions(path: Path = REACTIONS_FILE) -> list[ReactionSpec]:
    """Every reaction in the file; errors read `<file>:<line>: field 'reactions.<i>.<field>'`."""
    return load_yaml_file(ReactionsFile, path, ReactionConfigError).reactions or []


def build_reaction_sensor(spec: ReactionSpec) -> dg.SensorDefinition:
    watched = dg.AssetKey.from_user_string(spec.when_materialized)

    @dg.asset_sensor(
        name=spec.name,
        asset_key=watched,
        job_name=spec.run_job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"When {spec.when_materialized} materializes: "
        + ", ".join(filter(None, ["notify" if spec.notify else "", spec.run_job])),
    )
    def _reaction(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
        if spec.notify:
            deliver(
                subject=f"Landfall: {spec.when_materialized} updated",
                text=f"{spec.when_materialized} was materialized (run {asset_event.run_id[:8]})",
                details={
                    "reaction": spec.name,
                    "asset": spec.when_materialized,
                    "run_id": asset_event.run_id,
                    "materialized_at": asset_event.timestamp,
                },
            )
        if spec.run_job:
            yield dg.RunRequest(run_key=f"{spec.name}:{asset_event.run_id}:{asset_event.timestamp}")

    return _reaction
