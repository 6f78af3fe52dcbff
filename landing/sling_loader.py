"""Run a zone's Sling replication (landing/sling/<zone>.yaml) for one landed object."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from landing.zones import ZoneSpec

OBJECT_URL, STAGE_TABLE = "{object_url}", "{stage_table}"
_INSERTED = re.compile(r"inserted (\d+) rows")


class SlingRunError(RuntimeError):
    """Sling failed after the file passed validation: treated as transient and retried."""


@dataclass(frozen=True)
class SlingRunResult:
    rows: int
    seconds: float
    replication: dict[str, Any]


def render_replication(zone: ZoneSpec, object_url: str, stage_table: str) -> dict[str, Any]:
    """The zone's replication with its one templated stream bound to this object."""
    path = zone.sling_replication_path()
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    streams = config.get("streams") or {}
    if list(streams) != [OBJECT_URL] or (streams[OBJECT_URL] or {}).get("object") != STAGE_TABLE:
        raise ValueError(
            f"{path}: field 'streams': expected exactly one stream named {OBJECT_URL!r} with "
            f"object {STAGE_TABLE!r}"
        )
    config["streams"] = {object_url: {**streams[OBJECT_URL], "object": stage_table}}
    return config


def run_replication(
    zone: ZoneSpec,
    object_url: str,
    stage_table: str,
    connections: Mapping[str, Mapping[str, Any]],
    log: Callable[[str], None] = print,
) -> SlingRunResult:
    """Run Sling for one object into `stage_table`; connections are Sling connection dicts."""
    from sling import SLING_BIN

    replication = render_replication(zone, object_url, stage_table)
    env = {
        **os.environ,
        **{name: json.dumps(conn) for name, conn in connections.items()},
        "SLING_LOADED_AT_COLUMN": "false",  # we write our own provenance columns
        "SLING_DISABLE_TELEMETRY": "true",
    }
    with tempfile.TemporaryDirectory(prefix="landfall-sling-") as tmp:
        path = Path(tmp) / "replication.yaml"
        path.write_text(yaml.safe_dump(replication), encoding="utf-8")
        started = time.monotonic()
        proc = subprocess.run(
            [SLING_BIN, "run", "-r", str(path)], capture_output=True, text=True, env=env
        )
    seconds = time.monotonic() - started
    output = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    for line in output.splitlines():
        if line.strip():
            log(f"sling: {line.strip()}")
    if proc.returncode != 0:
        tail = " | ".join(line.strip() for line in output.splitlines()[-6:] if line.strip())
        raise SlingRunError(f"sling exited {proc.returncode} for {object_url}: {tail}")
    inserted = _INSERTED.findall(output)
    return SlingRunResult(
        rows=int(inserted[-1]) if inserted else 0, seconds=seconds, replication=replication
    )
