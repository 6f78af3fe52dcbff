"""YAML files the user edits, validated against a pydantic model: the one formatter of
validation errors, so every invalid file reads `<file>:<line>: field '<field>': <reason>`.

Files are read with libyaml (fast); only when validation fails is the file parsed again with
source positions (Dagster's own YAML position tracking) to point at the offending line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Spec = TypeVar("Spec", bound=BaseModel)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlConfigError(ValueError):
    """A YAML file the user edits is invalid: `<file>:<line>: <field>: <reason>`."""


def line_of(path: Path, text: str, key_path: Sequence[Any]) -> int:
    """The line of `key_path` in the file (or of the closest section holding it)."""
    # Dagster's YAML position tracking, imported only when an error needs a line
    from dagster_shared.yaml_utils import parse_yaml_with_source_position

    tree = parse_yaml_with_source_position(text, filename=str(path)).source_position_tree
    position, _ = tree.lookup_closest_and_path(list(key_path), trace=None)
    return position.start.line


def read_yaml(path: Path, error: type[YamlConfigError] = YamlConfigError) -> tuple[str, Any]:
    """The file's text and its parsed content; broken YAML raises `error` with the line."""
    text = path.read_text(encoding="utf-8")
    try:
        return text, yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"{mark.line + 1}:" if mark is not None else ""
        raise error(f"{path}:{line} not valid YAML: {exc}") from None


def describe(exc: ValidationError, path: Path, text: str, prefix: Sequence[Any] = ()) -> str:
    """Every error of `exc` as `<file>:<line>: field '<a.b.c>': <reason>`, joined by '; '."""
    reasons = []
    for item in exc.errors():
        key_path = [*prefix, *item["loc"]]
        field = ".".join(str(p) for p in key_path) or "<root>"
        value = item.get("input")
        # name the offending value, unless the message already quotes it or it is a section
        got = (
            f" (got {value!r})"
            if not isinstance(value, dict | list) and repr(value) not in item["msg"]
            else ""
        )
        line = line_of(path, text, key_path)
        reasons.append(f"{path}:{line}: field '{field}': {item['msg']}{got}")
    return "; ".join(reasons)


def validate(
    model: type[Spec],
    data: Any,
    path: Path,
    text: str,
    prefix: Sequence[Any] = (),
    error: type[YamlConfigError] = YamlConfigError,
) -> Spec:
    """`model.model_validate(data)`; a failure raises `error` naming `path`, the line and each
    bad field. `prefix` is where `data` sits inside the file (e.g. ["reactions", 2])."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(describe(exc, path, text, prefix)) from None


def load_yaml_file(
    model: type[Spec], path: Path, error: type[YamlConfigError] = YamlConfigError
) -> Spec:
    """Read and validate a whole file as `model` (an empty file validates as `{}`)."""
    text, data = read_yaml(path, error)
    return validate(model, data if data is not None else {}, path, text, error=error)
