"""The files of a new landing zone, as `dg scaffold defs ... landing_zone <name>` writes them:
the zone YAML (a one-column contract to replace) and, for a CSV zone, its Sling replication.
Plain functions; orchestration/components/landing_zones.py wires them to dg."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from landing.identifiers import validate_identifier
from landing.zones import SLING_DIR, ZONES_DIR

ZONE_TEMPLATE = """\
# The {name} zone (scaffolded): files landing under {name}/ load into raw.{name}. Replace the
# contract below with the columns every file must have, and their types, before the first file
# lands; every field is described in docs/architecture.md.
name: {name}
description: ""
prefix: {name}/
pattern: "*.{suffix}"
format: {format}
loader: {loader}
table: raw.{name}
columns:
  id: bigint
sensor:
  interval_seconds: 30
"""

# the same replication as every CSV zone's: Landfall binds {object_url} and {stage_table} per file
SLING_TEMPLATE = """\
# Sling replication of the {name} zone, run once per landed file (see landing/sling/orders.yaml).
source: LOCAL
target: WAREHOUSE
defaults:
  mode: full-refresh
streams:
  "{{object_url}}":
    object: "{{stage_table}}"
    source_options:
      format: csv
      header: true
      empty_as_null: true
    columns:
      "*": string
    target_options:
      direct_insert: true
"""


class ZoneExistsError(FileExistsError):
    """The zone to scaffold already has a file; nothing was written."""


def new_zone_files(
    name: str,
    file_format: Literal["csv", "jsonl"] = "csv",
    zones_dir: Path = ZONES_DIR,
    sling_dir: Path = SLING_DIR,
) -> dict[Path, str]:
    """Path -> text of the new zone's files; refuses a name that is not an identifier."""
    validate_identifier(name, "zone name")
    values = {"name": name, "format": file_format, "suffix": file_format}
    if file_format == "csv":
        return {
            zones_dir / f"{name}.yaml": ZONE_TEMPLATE.format(**values, loader="sling"),
            sling_dir / f"{name}.yaml": SLING_TEMPLATE.format(name=name),
        }
    return {zones_dir / f"{name}.yaml": ZONE_TEMPLATE.format(**values, loader="dlt")}


def write_new_zone(name: str, file_format: Literal["csv", "jsonl"] = "csv") -> list[Path]:
    """Write the new zone's files; if any exists already, write none and say which."""
    files = new_zone_files(name, file_format)
    existing = [str(path) for path in files if path.exists()]
    if existing:
        raise ZoneExistsError(f"zone {name!r} exists already: {', '.join(existing)}")
    for path, text in files.items():
        path.write_text(text)
    return list(files)
