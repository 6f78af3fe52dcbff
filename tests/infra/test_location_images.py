"""Each code location deploys on its own: its image installs only its dependency group from the
committed lock, and a venv built with exactly those `uv sync` arguments loads the location's
definitions without the other locations' packages.

Docker is not available on this machine, so the Dockerfiles are checked by parsing them: the
install step's groups and flags are read from the Dockerfile and reused for the venv built here.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "infra" / "docker"
LOCATIONS = ["ingestion", "transformation", "ml"]
# Packages of the other locations' groups that must not be importable in a location's venv.
FOREIGN = {
    # not snowflake.snowpark: dagster-snowflake (the landing merge into Snowflake) depends on it
    "ingestion": ["dbt", "dagster_dbt"],
    "transformation": ["sling", "dlt", "snowflake.snowpark"],
    "ml": ["dbt", "dagster_dbt", "sling", "dlt"],
}


def _instructions(location: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined, comments dropped."""
    text = (DOCKER / f"{location}.Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _uv_syncs(location: str) -> list[list[str]]:
    return [
        shlex.split(args)[2:]
        for word, args in _instructions(location)
        if word == "RUN" and args.startswith("uv sync")
    ]


def _groups(args: list[str]) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == "--group"]


def _install_args(location: str) -> list[str]:
    """The image's final `uv sync` (the one that installs the project too)."""
    return _uv_syncs(location)[-1]


@pytest.mark.parametrize("location", LOCATIONS)
def test_each_dockerfile_installs_only_its_group_from_the_lock(location: str) -> None:
    syncs = _uv_syncs(location)
    assert len(syncs) == 2, "dependencies first (cached layer), then the project"
    for args in syncs:
        assert "--locked" in args and "--no-default-groups" in args
        assert _groups(args) == [location, "prod"]
    assert "--no-install-project" in syncs[0] and "--no-install-project" not in syncs[1]
    instructions = _instructions(location)
    assert instructions[0][0] == "FROM" and "python:3.11" in instructions[0][1]
    copied = {
        source.rstrip("/")
        for word, args in instructions
        if word == "COPY" and not args.startswith("--from")
        for source in shlex.split(args)[:-1]
    }
    assert {"pyproject.toml", "uv.lock", "orchestration", "landing", "sensors", "ml"} <= copied
    assert ("transforms" in copied) == (location == "transformation")
    cmd = json.loads(next(args for word, args in instructions if word == "CMD"))
    assert cmd[:3] == ["dagster", "api", "grpc"]
    assert cmd[cmd.index("-m") + 1] == f"orchestration.{location}"
    # the Helm deployment runs the same module on the same port
    helm = yaml.safe_load((REPO / "infra" / "helm" / "values.yaml").read_text())
    deployment = next(
        d for d in helm["dagster-user-deployments"]["deployments"] if d["name"] == location
    )
    assert deployment["dagsterApiGrpcArgs"] == ["-m", f"orchestration.{location}"]
    assert str(deployment["port"]) == cmd[cmd.index("-p") + 1]
    assert deployment["image"]["repository"] == f"landfall-{location}"


def test_the_transformation_image_carries_its_dbt_manifest() -> None:
    from orchestration.dbt_project import dbt_project

    runs = [args for word, args in _instructions("transformation") if word == "RUN"]
    # where the code server looks for the prod target's manifest (transforms/target/prod/)
    target_path = dbt_project("prod").target_path.as_posix()
    assert any(
        "dbt parse" in r and "--target prod" in r and f"--target-path {target_path}" in r
        for r in runs
    )


def _uv() -> str:
    found = shutil.which("uv") or str(REPO / ".tools" / "bin" / "uv")
    if not Path(found).exists():
        pytest.skip("uv is not installed (make installs it into .tools/)")
    return found


LOAD_SCRIPT = """
import importlib, importlib.util, json, sys
module = importlib.import_module(sys.argv[1])
repo = module.defs.get_repository_def()
foreign = [p for p in sys.argv[2:] if importlib.util.find_spec(p.split(".")[0]) is not None
           and importlib.util.find_spec(p) is not None]
print(json.dumps({
    "assets": sorted(k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()),
    "jobs": sorted(j.name for j in repo.get_all_jobs()),
    "foreign": foreign,
}))
"""


def _location_venv_loads(location: str, tmp_path: Path) -> dict:
    venv = tmp_path / f"venv-{location}"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT") and not k.startswith("PYTHON")
    }
    subprocess.run(
        [_uv(), "sync", "--quiet", *_install_args(location)],
        cwd=REPO,
        env={**env, "UV_PROJECT_ENVIRONMENT": str(venv)},
        check=True,
        timeout=600,
    )
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", LOAD_SCRIPT, f"orchestration.{location}"]
        + FOREIGN[location],
        cwd=tmp_path,  # not the repository: the venv's own install of the project is used
        env={**env, "DAGSTER_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


EXPECTED_ASSET = {
    "ingestion": "raw/orders",
    "transformation": "marts/customer_order_features",
    "ml": "ml/customer_scores",
}


def test_the_ingestion_location_loads_from_its_group_alone(tmp_path: Path) -> None:
    loaded = _location_venv_loads("ingestion", tmp_path)
    assert EXPECTED_ASSET["ingestion"] in loaded["assets"]
    assert "ingest_orders_job" in loaded["jobs"]
    assert loaded["foreign"] == []


@pytest.mark.slow  # ~30-45 s each here; the ingestion one stays in the default suite
@pytest.mark.parametrize("location", ["transformation", "ml"])
def test_each_location_loads_from_its_group_alone(location: str, tmp_path: Path) -> None:
    loaded = _location_venv_loads(location, tmp_path)
    assert EXPECTED_ASSET[location] in loaded["assets"]
    assert loaded["foreign"] == []
