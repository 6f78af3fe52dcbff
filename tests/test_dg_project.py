"""Dagster's own conventions from the repository root: the dg workspace (dg.toml, one project per
code location under locations/) loads, lists Landfall's component types, and no code location
warns about superseded or deprecated Dagster APIs used by our modules."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from common.settings import PROJECT_ROOT

LOCATIONS = ("ingestion", "transformation", "ml")
BIN = Path(sys.executable).parent
# Dagster's warning classes for APIs that move (SupersessionWarning, BetaWarning, ...) and
# Python's own deprecation warnings
API_WARNING = re.compile(
    r"^(?P<file>\S+?):\d+: (?P<cls>\w*(?:Supersession|Deprecation|Beta|Preview)\w*Warning): "
    r"(?P<text>.*)$",
    re.MULTILINE,
)
# the validate command itself is superseded by `dg check defs` (tested below); not our code
CLI_SUPERSEDED = "`definitions_validate_command` is superseded"
OUR_PACKAGES = ("orchestration", "landing", "sensors", "ml", "common", "devstack", "locations")


def _dagster_or_ours(file: str) -> bool:
    """A file of a dagster* package, or of this repository outside its venvs."""
    path = Path(file)
    if any(part.startswith("dagster") for part in path.parts):
        return True
    return path.is_relative_to(PROJECT_ROOT) and not path.parts[len(PROJECT_ROOT.parts)].startswith(
        ".venv"
    )


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return subprocess.run(
        args,
        cwd=PROJECT_ROOT,
        env={**os.environ, "DAGSTER_HOME": str(home), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_dg_check_defs_loads_every_location_from_the_root(tmp_path: Path) -> None:
    done = _run([str(BIN / "dg"), "check", "defs"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All definitions loaded successfully." in done.stdout


def test_dg_list_components_shows_landfalls_component_types(tmp_path: Path) -> None:
    done = _run([str(BIN / "dg"), "list", "components", "--json"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    keys = {item["key"] for item in json.loads(done.stdout)["items"]}
    assert {
        "orchestration.components.landing_zones.LandingZonesComponent",
        "orchestration.components.reactions.ReactionSensorsComponent",
        "orchestration.components.snowpark_models.SnowparkModelComponent",
        "orchestration.components.snowpark_models.SnowparkModelsComponent",
    } <= keys


def test_dg_list_defs_for_one_location_from_the_root(tmp_path: Path) -> None:
    done = _run(
        [str(BIN / "dg"), "list", "defs", "--target-path", "locations/ingestion", "--json"],
        tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    listed = json.loads(done.stdout)
    assets = {a["asset_key"] for a in listed["assets"]}
    assert {"raw/orders", "raw/customers", "raw/events"} <= assets
    assert "ingest_orders_job" in {j["name"] for j in listed["jobs"]}


def test_definitions_validate_warns_of_no_superseded_api_in_our_code(tmp_path: Path) -> None:
    """`dagster definitions validate` of the workspace (all three locations, one process): each
    location passes, and no warning of an API that moves comes from our code."""
    done = _run(
        [str(BIN / "dagster"), "definitions", "validate", "-w", "infra/workspace.yaml"],
        tmp_path,
        PYTHONWARNINGS="always",  # every warning, not once per place
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    for location in LOCATIONS:
        assert f"Validation successful for code location {location}" in output
    warned = [
        m
        for m in API_WARNING.finditer(output)
        if CLI_SUPERSEDED not in m["text"]
        # Dagster's own classes, or a deprecation raised in Dagster or in our code (another
        # library's own deprecation, e.g. sqlglotrs's, is not an API we call)
        and (m["cls"] != "DeprecationWarning" or _dagster_or_ours(m["file"]))
    ]
    assert not warned, "\n".join(m.group(0) for m in warned)
    # and nothing at all warned from a line of our own packages
    ours = re.compile(rf"^{re.escape(str(PROJECT_ROOT))}/({'|'.join(OUR_PACKAGES)})/\S+:\d+: ")
    assert not [line for line in output.splitlines() if ours.match(line)], output


def test_dg_scaffold_defs_creates_a_zone_that_loads(tmp_path: Path) -> None:
    """What `dg scaffold defs orchestration.components.landing_zones.landing_zone invoices`
    (in locations/ingestion) runs, in a copy of the repository: the zone's files are written
    where every zone lives, and the ingestion location then has the zone."""
    from tests.test_readme_howtos import repository_copy, run_check_in

    copy = repository_copy(tmp_path / "repo")
    run_check_in(
        copy,
        "tests/test_scaffolded_zone.py",
        """
        import json

        import dagster as dg
        import pytest
        from dagster.components.component_scaffolding import scaffold_object

        from common.settings import PROJECT_ROOT
        from landing.zone_scaffold import ZoneExistsError
        from landing.zones import load_zones

        TYPE = "orchestration.components.landing_zones.landing_zone"
        DEFS = PROJECT_ROOT / "locations" / "ingestion" / "landfall_ingestion" / "defs"


        def test_a_scaffolded_zone_loads_and_an_existing_one_is_refused():
            scaffold_object(DEFS / "invoices", TYPE, None, "yaml", DEFS.parents[1])
            scaffold_object(
                DEFS / "clicks", TYPE, json.dumps({"file_format": "jsonl"}), "yaml", DEFS.parents[1]
            )
            zones = {zone.name: zone for zone in load_zones()}
            assert (zones["invoices"].loader, zones["invoices"].table) == ("sling", "raw.invoices")
            assert zones["invoices"].sling_replication_path().is_file()
            assert (zones["clicks"].loader, zones["clicks"].format) == ("dlt", "jsonl")
            assert not (DEFS / "invoices").exists()  # nothing left in the defs folder

            from orchestration.ingestion import defs

            keys = defs.resolve_asset_graph().get_all_asset_keys()
            assert {dg.AssetKey(["raw", "invoices"]), dg.AssetKey(["raw", "clicks"])} <= keys
            assert defs.resolve_sensor_def("landing_invoices_sensor")

            before = (PROJECT_ROOT / "landing" / "zones" / "orders.yaml").read_text()
            with pytest.raises(ZoneExistsError, match="orders.yaml"):
                scaffold_object(DEFS / "orders", TYPE, None, "yaml", DEFS.parents[1])
            assert (PROJECT_ROOT / "landing" / "zones" / "orders.yaml").read_text() == before
        """,
    )
