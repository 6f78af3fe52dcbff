"""The inventory of the platform: each code location's asset graph (keys, group and kinds,
partitions, automation condition, dependencies, checks) with its jobs and sensors, written to
tests/snapshots/<location>.txt and compared with the Definitions the location builds.

A reviewer reads the diff of those files to see what a change does to the platform. After an
intended change, `make snapshots` (pytest tests/test_inventory.py --snapshot-update) rewrites
them; commit the result.
"""

from __future__ import annotations

import difflib
import importlib
from pathlib import Path

import dagster as dg
import pytest

LOCATIONS = ("ingestion", "transformation", "ml")
SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE_COMMAND = "make snapshots"


def _label(condition: dg.AutomationCondition | None) -> str:
    if condition is None:
        return "none"
    return condition.get_label() or condition.name


def _partitions(partitions_def: dg.PartitionsDefinition | None) -> str:
    if partitions_def is None:
        return "none"
    if isinstance(partitions_def, dg.DynamicPartitionsDefinition):
        return f"dynamic {partitions_def.name}"
    return str(partitions_def)


def _keys(keys: object) -> str:
    return ", ".join(sorted(k.to_user_string() for k in keys)) or "none"  # type: ignore[attr-defined]


def render(location: str, defs: dg.Definitions) -> str:
    """The location's inventory as sorted, stable text."""
    graph = defs.resolve_asset_graph()
    lines = [
        f"# The `{location}` code location (orchestration/{location}.py) as built in the local",
        "# environment: its assets, jobs and sensors. tests/test_inventory.py compares it with",
        f"# the built Definitions; after an intended change run `{UPDATE_COMMAND}` and commit it.",
        "",
        "## assets",
    ]
    checks_by_asset: dict[dg.AssetKey, list[dg.AssetCheckKey]] = {}
    for check_key in graph.asset_check_keys:
        checks_by_asset.setdefault(check_key.asset_key, []).append(check_key)
    for key in sorted(graph.materializable_asset_keys, key=lambda k: k.to_user_string()):
        node = graph.get(key)
        lines += [
            "",
            key.to_user_string(),
            f"  group: {node.group_name}; kinds: {', '.join(sorted(node.kinds)) or 'none'}",
            f"  partitions: {_partitions(node.partitions_def)}",
            f"  automation: {_label(node.automation_condition)}",
            f"  deps: {_keys(node.parent_keys)}",
        ]
        if node.freshness_policy is not None:
            lines.append(f"  freshness: {node.freshness_policy!r}")
        checks = sorted(checks_by_asset.pop(key, []), key=lambda c: c.name)
        for check_key in checks:
            check = graph.get(check_key)
            when = check.automation_condition
            extra = [
                *(["blocking"] if check.blocking else []),
                *([f"automation {_label(when)}"] if when is not None else []),
            ]
            lines.append(f"  check {check_key.name}" + (f" ({'; '.join(extra)})" if extra else ""))
    # checks this location runs on another location's assets (e.g. dbt source freshness)
    for key in sorted(checks_by_asset, key=lambda k: k.to_user_string()):
        names = ", ".join(sorted(c.name for c in checks_by_asset[key]))
        lines += ["", f"{key.to_user_string()} (another location's asset)", f"  checks: {names}"]

    lines += ["", "## jobs", ""]
    for job in sorted(defs.jobs or [], key=lambda j: j.name):
        selection = job.selection.resolve(graph) if hasattr(job, "selection") else set()
        lines.append(f"{job.name}: {_keys(selection)}")
    lines += ["", "## sensors", ""]
    for sensor in sorted(defs.sensors or [], key=lambda s: s.name):
        if isinstance(sensor, dg.AutomationConditionSensorDefinition):
            assets = len(sensor.asset_selection.resolve(graph))
            checks = len(sensor.asset_selection.resolve_checks(graph))
            does = f"evaluates the automation of {assets} assets and {checks} checks"
        elif sensor.targets:
            does = "starts " + ", ".join(sorted(t.job_name for t in sensor.targets))
        else:  # its description's first sentence
            text = " ".join((sensor.description or type(sensor).__name__).split())
            does = text.split(". ")[0].rstrip(".")
        lines.append(f"{sensor.name}: {does} (default {sensor.default_status.value.lower()})")
    return "\n".join(lines) + "\n"


def _defs(location: str) -> dg.Definitions:
    return importlib.import_module(f"orchestration.{location}").defs


@pytest.mark.parametrize("location", LOCATIONS)
def test_the_location_matches_its_inventory(location: str, request: pytest.FixtureRequest) -> None:
    path = SNAPSHOTS / f"{location}.txt"
    built = render(location, _defs(location))
    if request.config.getoption("snapshot_update"):
        SNAPSHOTS.mkdir(exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != built:
            path.write_text(built, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: run `{UPDATE_COMMAND}` and commit it"
    recorded = path.read_text(encoding="utf-8")
    if recorded != built:
        diff = "".join(
            difflib.unified_diff(
                recorded.splitlines(keepends=True),
                built.splitlines(keepends=True),
                fromfile=f"tests/snapshots/{path.name} (recorded)",
                tofile=f"orchestration.{location} (built)",
            )
        )
        pytest.fail(
            f"the {location} location no longer matches {path.name}:\n{diff}\n"
            f"If the change is intended, run `{UPDATE_COMMAND}` "
            f"(pytest tests/test_inventory.py --snapshot-update) and commit the file.",
            pytrace=False,
        )
