"""Start and stop the embedded default stack for `landfall dev` and `landfall demo`:
moto's S3 server, the landing bucket, a Dagster home, and the Dagster processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3

from common.settings import PROJECT_ROOT, Settings, get_settings
from devstack import local_stack
from landing.samples import sample_files

WORKSPACE = PROJECT_ROOT / "infra" / "workspace.yaml"
LOCAL_INSTANCE_YAML = PROJECT_ROOT / "infra" / "dagster.local.yaml"


@dataclass
class RunningStack:
    settings: Settings
    env: dict[str, str]
    s3: object

    @property
    def dagster_home(self) -> Path:
        return Path(self.env["DAGSTER_HOME"])

    def drop_samples(self, **sizes: int | str) -> dict[str, bytes]:
        files = sample_files(**sizes)
        for key, body in files.items():
            self.s3.put_object(Bucket=self.settings.bucket, Key=key, Body=body)
        return files


def prepare(settings: Settings) -> dict[str, str]:
    """Everything a fresh clone needs before anything runs: env, extensions, dbt manifest."""
    env = local_stack.apply_local_environment(settings)
    local_stack.ensure_duckdb_extensions()
    from orchestration.dbt_project import prepare_manifest

    prepare_manifest()  # parses only when the project's files differ from the manifest's
    home = Path(env["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(LOCAL_INSTANCE_YAML, home / "dagster.yaml")
    return env


@contextmanager
def local_stack_running(settings: Settings | None = None) -> Iterator[RunningStack]:
    """moto's S3 on the configured port with the landing bucket; stopped on exit."""
    settings = settings or get_settings()
    env = prepare(settings)
    port = int(settings.s3_endpoint.rsplit(":", 1)[1])
    server = local_stack.start_s3_server(port, settings.state_dir / "moto.log")
    try:
        s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint, region_name="us-east-1")
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        if settings.bucket not in existing:
            s3.create_bucket(Bucket=settings.bucket)
        yield RunningStack(settings, env, s3)
    finally:
        stop(server)


def start_dagster(command: list[str], log_path: Path | None = None) -> subprocess.Popen:
    """Start a Dagster CLI process that stops on SIGTERM (started from a script, `dagster dev`
    otherwise ignores SIGINT/SIGTERM), in its own process group so its children stop too."""
    log = open(log_path, "ab") if log_path else None  # noqa: SIM115
    return subprocess.Popen(
        ["env", "--default-signal=INT,TERM", *command],
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen, timeout_s: float = 30) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def dagster_bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)
