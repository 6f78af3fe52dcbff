"""Validate a YAML file against a pydantic model; errors name the file, the line and the field.

Files are read with libyaml (fast); only when validation fails is the file parsed again with
source positions (Dagster's own YAML position tracking) to point at the offending line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from dagster_shared.yaml_utils import parse_yaml_with_source_position
from pydantic import BaseModel, ValidationError

Spec = TypeVar("Spec", bound=BaseModel)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlConfigError(ValueError):
    """A YAML file the user edits is invalid: `<file>:<line>: <field>: <reason>`."""


def _line(path: Path, text: str, key_path: Sequence[Any]) -> int:
    tree = parse_yaml_with_source_position(text, filename=str(path)).source_position_tree
    position, _ = tree.lookup_closest_and_path(list(key_path), trace=None)
    return position.start.line


def read_yaml(path: Path) -> tuple[str, Any]:
    text = path.read_text(encoding="utf-8")
    try:
        return text, yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"{mark.line + 1}:" if mark is not None else ""
        raise YamlConfigError(f"{path}:{line} not valid YAML: {exc}") from None


def validate(
    model: type[Spec], data: Any, path: Path, text: str, prefix: Sequence[Any] = ()
) -> Spec:
    """`model.model_validate(data)`; a failure names `path`, the line and each bad field.

    `prefix` is where `data` sits inside the file (e.g. ["reactions", 2])."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        reasons = []
        for error in exc.errors():
            key_path = [*prefix, *error["loc"]]
            field = ".".join(str(p) for p in key_path) or "<root>"
            reasons.append(f"{path}:{_line(path, text, key_path)}: field '{field}': {error['msg']}")
        raise YamlConfigError("; ".join(reasons)) from None
