"""The dbt project in transforms/, prepared (parsed) at build/dev time, not on every load."""

from __future__ import annotations

import shutil
import sys
from functools import cached_property
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject
from packaging import version

from common.settings import PROJECT_ROOT, dbt_target

TRANSFORMS_DIR = PROJECT_ROOT / "transforms"


def dbt_project() -> DbtProject:
    return DbtProject(project_dir=TRANSFORMS_DIR, profiles_dir=TRANSFORMS_DIR, target=dbt_target())


def dbt_executable() -> str:
    """The dbt of this environment, whether or not its bin folder is on PATH."""
    return shutil.which("dbt") or str(Path(sys.executable).parent / "dbt")


def manifest_path(project: DbtProject | None = None) -> Path:
    path = (project or dbt_project()).manifest_path
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the dbt manifest is prepared at build time; run "
            "`landfall prepare` (make does this for you)"
        )
    return path


class LandfallDbtCliResource(DbtCliResource):
    """DbtCliResource that reads the dbt-core version from the installed package instead of
    running `dbt --version` before every invocation (a second dbt start-up, ~5-10 s here)."""

    @cached_property
    def _cli_version(self) -> version.Version:
        from dbt.version import __version__

        return version.parse(__version__)


def dbt_resource(project: DbtProject | None = None) -> LandfallDbtCliResource:
    return LandfallDbtCliResource(
        project_dir=project or dbt_project(), dbt_executable=dbt_executable()
    )
