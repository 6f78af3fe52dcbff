"""Step retry policies per asset kind, from orchestration/retries.yaml: exponential backoff with
jitter, so retries of many steps that failed together do not hit S3 or the warehouse in step."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import dagster as dg
from pydantic import BaseModel, ConfigDict, Field

from common.yaml_config import YamlConfigError, load_yaml_file

RETRIES_FILE = Path(__file__).with_name("retries.yaml")
ASSET_KINDS = ("landing_zone", "dbt", "snowpark")


class RetryConfigError(YamlConfigError):
    """orchestration/retries.yaml is invalid: the message names the file, the field and why."""


class StepRetries(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_retries: int = Field(ge=0, le=10)
    delay_seconds: float = Field(gt=0, le=600)


class RetriesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    landing_zone: StepRetries
    dbt: StepRetries
    snowpark: StepRetries


def load_retries(path: Path = RETRIES_FILE) -> RetriesFile:
    return load_yaml_file(RetriesFile, path, RetryConfigError)


@cache
def retry_policy(kind: str) -> dg.RetryPolicy:
    """The step RetryPolicy for one asset kind (landing_zone, dbt, snowpark)."""
    if kind not in ASSET_KINDS:
        raise RetryConfigError(f"unknown asset kind {kind!r}; expected one of {ASSET_KINDS}")
    config: StepRetries = getattr(load_retries(), kind)
    return dg.RetryPolicy(
        max_retries=config.max_retries,
        delay=config.delay_seconds,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )
