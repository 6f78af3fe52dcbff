"""The dbt project in transforms/, prepared (parsed) at build/dev time, not on every load."""

from __future__ import annotations

import hashlib
import shutil
import sys
from functools import cached_property
from pathlib import Path

import yaml
from dagster_dbt import DbtCliResource, DbtProject
from packaging import version

from common.settings import PROJECT_ROOT, dbt_target

TRANSFORMS_DIR = PROJECT_ROOT / "transforms"

# What `dbt parse` reads besides the folders dbt_project.yml names (and their defaults below).
_PARSED_FILES = (
    "dbt_project.yml",
    "profiles.yml",
    "packages.yml",
    "dependencies.yml",
    "package-lock.yml",
    "selectors.yml",
    ".dbtignore",
)
_PARSED_FOLDERS = {
    "model-paths": ["models"],
    "macro-paths": ["macros"],
    "seed-paths": ["seeds"],
    "snapshot-paths": ["snapshots"],
    "test-paths": ["tests"],
    "analysis-paths": ["analyses"],
}
# Written beside manifest.json once it is built: the fingerprint of the files it was built from.
FINGERPRINT_FILE = "landfall_manifest_fingerprint"


def dbt_project(target: str | None = None) -> DbtProject:
    """The project for `target` (default: the environment's). Each target keeps its manifest in
    its own folder (transforms/target/<target>/): parsing for prod must not overwrite the local
    manifest, nor the other way round."""
    target = target or dbt_target()
    return DbtProject(
        project_dir=TRANSFORMS_DIR,
        profiles_dir=TRANSFORMS_DIR,
        target=target,
        target_path=Path("target") / target,
    )


def dbt_executable() -> str:
    """The dbt of this environment, whether or not its bin folder is on PATH."""
    return shutil.which("dbt") or str(Path(sys.executable).parent / "dbt")


def manifest_path(project: DbtProject | None = None) -> Path:
    path = (project or dbt_project()).manifest_path
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the dbt manifest is prepared at build time; run "
            "`landfall setup` (make does this for you)"
        )
    return path


def parsed_files(project: DbtProject) -> list[Path]:
    """Every file of the project that `dbt parse` reads: the top-level project files and the
    model, macro, seed, snapshot, test and analysis folders (as dbt_project.yml names them).
    target/, logs/ and dbt_packages/ are outputs, not inputs."""
    root = Path(project.project_dir)
    try:
        config = yaml.safe_load((root / "dbt_project.yml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        config = {}  # dbt parse will say what is wrong with it; the defaults still count
    folders = {
        folder
        for key, default in _PARSED_FOLDERS.items()
        for folder in (config.get(key) if isinstance(config, dict) else None) or default
    }
    files = [root / name for name in _PARSED_FILES if (root / name).is_file()]
    for folder in sorted(folders):
        files += (
            p
            for p in (root / folder).rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )
    return sorted(set(files))


def project_fingerprint(project: DbtProject) -> str:
    """A digest of what the manifest depends on: each parsed file's relative path and content,
    the target and the dbt version. Deleting, renaming or editing a file changes it whatever the
    files' modification times say."""
    from dbt.version import __version__ as dbt_version

    root = Path(project.project_dir)
    digest = hashlib.sha256(f"target={project.target}\ndbt={dbt_version}\n".encode())
    for path in parsed_files(project):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def prepare_manifest(project: DbtProject | None = None) -> bool:
    """Build the project's manifest with dagster-dbt's own preparation (`dbt deps` when the
    project has packages, then `dbt parse`) unless it was built from exactly these files.
    Returns True when it parsed. The fingerprint is taken before parsing, so a file edited
    while dbt parses makes the next call parse again."""
    project = project or dbt_project()
    stamp = project.manifest_path.with_name(FINGERPRINT_FILE)
    fingerprint = project_fingerprint(project)
    if project.manifest_path.exists() and stamp.exists() and stamp.read_text() == fingerprint:
        return False
    stamp.unlink(missing_ok=True)  # a failed parse leaves no claim that the manifest is current
    project.preparer.prepare(project)
    manifest_path(project)  # raises, naming the command, when dbt wrote no manifest
    stamp.write_text(fingerprint)
    return True


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
