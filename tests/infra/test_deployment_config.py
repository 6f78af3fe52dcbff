"""Deployment configuration under infra/: it parses, Dagster accepts the instance configs, the
Helm values and IAM policy stay least-privilege and secret-free, and the workspace names exactly
the three code locations. Fast and offline, except the optional Postgres round trip, which skips
when no server answers at 127.0.0.1:5432."""

from __future__ import annotations

import getpass
import importlib.util
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
HELM_VALUES = INFRA / "helm" / "values.yaml"
IAM_POLICY = INFRA / "iam" / "landing-bucket-policy.json"
LOCATIONS = {"ingestion", "transformation", "ml"}
ZONE_PREFIXES = ("orders/", "customers/", "events/")
QUARANTINE = "_quarantine/"
SECRET_KEY = re.compile(r"password|secret|token|key", re.IGNORECASE)
AWS_ACCESS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")
PG_ENV = {
    "DAGSTER_PG_HOST": "db.invalid",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_DB": "dagster",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "dummy-not-a-secret",
}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _config_files() -> list[Path]:
    return sorted(
        p for p in INFRA.rglob("*") if p.is_file() and p.suffix in {".yaml", ".yml", ".json"}
    )


def _walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (path, value) pair in a YAML/JSON tree, depth first."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, (*path, str(i)))


# ---------------------------------------------------------------------------------------------
# every file parses


def test_infra_has_the_expected_files() -> None:
    names = {p.relative_to(INFRA).as_posix() for p in _config_files()}
    assert {
        "workspace.yaml",
        "dagster.local.yaml",
        "dagster.prod.yaml",
        "helm/values.yaml",
        "iam/landing-bucket-policy.json",
    } <= names


@pytest.mark.parametrize("path", _config_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_every_config_file_parses(path: Path) -> None:
    if path.suffix == ".json":
        data = json.loads(path.read_text())
    else:
        data = list(yaml.safe_load_all(path.read_text()))
        data = [d for d in data if d is not None]
        assert len(data) == 1, f"{path} should hold exactly one YAML document"
        data = data[0]
    assert isinstance(data, dict) and data, f"{path} is empty or not a mapping"


# ---------------------------------------------------------------------------------------------
# Dagster instance configs


def _validate_instance_config(config_dir: Path, filename: str) -> dict[str, Any]:
    """Dagster's own validation: the instance schema, then each pluggable class's config
    (storage, run coordinator, ...) against that class's schema, with env vars resolved."""
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster._serdes import class_from_code_pointer

    config, custom_class = dagster_instance_config(str(config_dir), filename)
    assert custom_class is None

    storage_classes = {
        "postgres": ("dagster_postgres", "DagsterPostgresStorage"),
        "sqlite": ("dagster._core.storage.sqlite_storage", "DagsterSqliteStorage"),
    }
    for kind, storage_config in (config.get("storage") or {}).items():
        assert kind in storage_classes, f"unexpected storage {kind}"
        cls = class_from_code_pointer(*storage_classes[kind])
        result = process_config(cls.config_type(), storage_config)
        assert result.success, result.errors

    for section, value in config.items():
        if isinstance(value, dict) and {"module", "class"} <= value.keys():
            cls = class_from_code_pointer(value["module"], value["class"])
            result = process_config(cls.config_type(), value.get("config") or {})
            assert result.success, (section, result.errors)
    return dict(config)


@pytest.fixture
def pg_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PG_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("pg_env")
@pytest.mark.parametrize("filename", ["dagster.prod.yaml", "dagster.local.yaml"])
def test_instance_config_is_valid(filename: str) -> None:
    config = _validate_instance_config(INFRA, filename)
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_monitoring"]["enabled"] is True
    assert config["concurrency"]["pools"]["granularity"] == "op"


@pytest.mark.usefixtures("pg_env")
def test_local_instance_loads(tmp_path: Path) -> None:
    """The local config builds a real (SQLite) instance; copied so nothing lands in infra/."""
    from dagster import DagsterInstance

    shutil.copy(INFRA / "dagster.local.yaml", tmp_path / "dagster.yaml")
    instance = DagsterInstance.from_config(str(tmp_path))
    try:
        pools = instance.event_log_storage.get_pool_config()
        assert pools.default_pool_limit == 1  # DuckDB: one writer
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    finally:
        instance.dispose()


def test_prod_instance_takes_postgres_password_only_from_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = _yaml(INFRA / "dagster.prod.yaml")
    postgres = config["storage"]["postgres"]
    assert "postgres_url" not in postgres, "a URL would embed the password"
    assert postgres["postgres_db"]["password"] == {"env": "DAGSTER_PG_PASSWORD"}
    for path, value in _walk(config):
        if path and SECRET_KEY.search(path[-1]):
            assert isinstance(value, dict) and set(value) == {"env"}, (path, value)

    # and Dagster really reads it from the environment: unset, the storage config fails
    from dagster._config import process_config
    from dagster_postgres import DagsterPostgresStorage

    for name, value in PG_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DAGSTER_PG_PASSWORD")
    result = process_config(DagsterPostgresStorage.config_type(), postgres)
    assert not result.success
    assert "DAGSTER_PG_PASSWORD" in str(result.errors)


# ---------------------------------------------------------------------------------------------
# Helm values


@pytest.fixture(scope="module")
def helm() -> dict[str, Any]:
    return _yaml(HELM_VALUES)


def test_helm_deploys_the_three_code_locations(helm: dict[str, Any]) -> None:
    user_deployments = helm["dagster-user-deployments"]
    assert user_deployments["enabled"] is True
    deployments = user_deployments["deployments"]
    assert sorted(d["name"] for d in deployments) == sorted(LOCATIONS)
    for d in deployments:
        name = d["name"]
        assert d["image"]["repository"] == f"landfall-{name}"
        assert d["dagsterApiGrpcArgs"] == ["-m", f"orchestration.{name}"]
        assert d["port"] == 3030


def test_helm_run_launcher_storage_and_queue(helm: dict[str, Any]) -> None:
    assert helm["runLauncher"]["type"] == "K8sRunLauncher"

    pg = helm["postgresql"]
    assert pg["enabled"] is False, "Postgres is external"
    assert pg["postgresqlHost"] and pg["postgresqlDatabase"] and pg["postgresqlUsername"]
    assert not pg.get("postgresqlPassword"), "the password comes from a Secret"
    assert helm["generatePostgresqlPasswordSecret"] is False
    assert helm["global"]["postgresqlSecretName"]

    coordinator = helm["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] is True
    assert coordinator["type"] == "QueuedRunCoordinator"
    assert helm["concurrency"]["enabled"] is True
    assert helm["concurrency"]["pools"]["defaultLimit"] >= 1
    assert "warehouse" in HELM_VALUES.read_text()  # the pool is documented where it is limited
    assert helm["dagsterDaemon"]["runMonitoring"]["enabled"] is True


def _env_lists(helm: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], list[Any]]]:
    for path, value in _walk(helm):
        if path and path[-1] in {"env", "envVars"} and isinstance(value, list):
            yield path, value


def test_helm_env_comes_from_secrets_or_is_plain_config(helm: dict[str, Any]) -> None:
    # Dagster's own switch (event batching), read by Dagster rather than common/settings.py
    dagster_reads = {"DAGSTER_EVENT_BATCH_SIZE"}
    plain_allowed = {"LANDFALL_ENV", "LANDFALL_BUCKET", "LANDFALL_UI_URL", *dagster_reads}
    settings = (REPO / "common" / "settings.py").read_text()
    seen = 0
    for path, env in _env_lists(helm):
        for var in env:
            seen += 1
            # agreement with what runs: every variable set is one the platform reads
            name = var["name"]
            assert f'"{name}"' in settings or name.startswith("SNOWFLAKE_") or name in dagster_reads
            if "valueFrom" in var:
                assert set(var["valueFrom"]) == {"secretKeyRef"}, (path, var)
            else:
                assert var["name"] in plain_allowed, (path, var)
                if var["name"] == "LANDFALL_ENV":
                    assert var["value"] == "prod"
    assert seen
    text = HELM_VALUES.read_text()
    for name in ("LANDFALL_S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert f"name: {name}" not in text, f"{name} must not be set in prod"
    for d in helm["dagster-user-deployments"]["deployments"]:
        assert any(s.get("name") for s in d["envSecrets"]), d["name"]


def _secret_like_literals(tree: Any) -> list[tuple[tuple[str, ...], Any]]:
    """Values under password/secret/token/key keys that are literals rather than references:
    anything inside a secretKeyRef, a secret's *name*, an env reference or an empty value is
    fine; so are booleans (switches such as generatePostgresqlPasswordSecret)."""
    found = []
    for path, value in _walk(tree):
        if not path or isinstance(value, dict | list) or value in (None, ""):
            continue
        if isinstance(value, bool):
            continue
        if "secretKeyRef" in path or "envSecrets" in path:
            continue
        key = path[-1]
        if SECRET_KEY.search(key) and not key.lower().endswith("name"):
            found.append((path, value))
    # env entries whose *name* looks secret must not carry a literal value
    for path, value in _walk(tree):
        is_env_var = isinstance(value, dict) and "name" in value and "value" in value
        if is_env_var and SECRET_KEY.search(str(value["name"])) and value["value"]:
            found.append((path, value["value"]))
    return found


def test_helm_values_hold_no_literal_secrets(helm: dict[str, Any]) -> None:
    assert _secret_like_literals(helm) == []
    assert not AWS_ACCESS_KEY_ID.search(HELM_VALUES.read_text())


def test_secret_scan_catches_literals() -> None:
    """The scanner itself: a literal password, token or secret env value is reported."""
    bad = {
        "postgresql": {"postgresqlPassword": "hunter2"},
        "env": [{"name": "SNOWFLAKE_PASSWORD", "value": "hunter2"}],
        "api": {"token": "abc"},
    }
    assert len(_secret_like_literals(bad)) == 3
    ok = {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}
    assert _secret_like_literals(ok) == []


@pytest.mark.parametrize("path", _config_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_no_access_keys_anywhere(path: Path) -> None:
    assert not AWS_ACCESS_KEY_ID.search(path.read_text())


# ---------------------------------------------------------------------------------------------
# IAM policy


@pytest.fixture(scope="module")
def policy() -> dict[str, Any]:
    return json.loads(IAM_POLICY.read_text())


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _object_path(resource: str) -> str:
    """The object key pattern of an S3 object ARN (`arn:aws:s3:::bucket/<key>`)."""
    assert resource.startswith("arn:aws:s3:::"), resource
    _, _, key = resource.removeprefix("arn:aws:s3:::").partition("/")
    return key


def test_iam_policy_is_allow_only_with_explicit_actions(policy: dict[str, Any]) -> None:
    assert policy["Version"] == "2012-10-17"
    actions = set()
    for st in policy["Statement"]:
        assert st["Effect"] == "Allow"
        assert "NotAction" not in st and "NotResource" not in st
        for action in _as_list(st["Action"]):
            assert "*" not in action, f"wildcard action {action}"
            actions.add(action)
        for resource in _as_list(st["Resource"]):
            assert resource != "*"
    assert actions == {
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    }
    assert not any(a.lower().startswith("s3:delete") for a in actions)


def test_iam_policy_scopes_s3_to_zones_and_quarantine(policy: dict[str, Any]) -> None:
    for st in policy["Statement"]:
        actions = set(_as_list(st["Action"]))
        resources = _as_list(st["Resource"])
        if "s3:ListBucket" in actions:
            assert actions == {"s3:ListBucket"}
            assert all("/" not in r.removeprefix("arn:aws:s3:::") for r in resources)
            prefixes = _as_list(st["Condition"]["StringLike"]["s3:prefix"])
            assert prefixes and all(p.startswith(ZONE_PREFIXES) for p in prefixes)
        if "s3:PutObject" in actions:
            # writes only under _quarantine/
            assert all(_object_path(r).startswith(QUARANTINE) for r in resources), resources
        if "s3:GetObject" in actions:
            assert all(_object_path(r).startswith((*ZONE_PREFIXES, QUARANTINE)) for r in resources)
        if any(a.startswith("sqs:") for a in actions):
            assert all(re.fullmatch(r"arn:aws:sqs:[^:]+:[^:]+:landfall-\*", r) for r in resources)
    writes = [
        r
        for st in policy["Statement"]
        if "s3:PutObject" in _as_list(st["Action"])
        for r in _as_list(st["Resource"])
    ]
    assert writes, "quarantine copies need s3:PutObject"


# ---------------------------------------------------------------------------------------------
# workspace


def test_workspace_names_exactly_the_three_locations() -> None:
    workspace = _yaml(INFRA / "workspace.yaml")
    entries = [e["python_module"] for e in workspace["load_from"]]
    assert sorted(e["location_name"] for e in entries) == sorted(LOCATIONS)
    for e in entries:
        assert e["module_name"] == f"orchestration.{e['location_name']}"
        assert (INFRA / e["working_directory"]).resolve() == REPO
        assert importlib.util.find_spec(e["module_name"]) is not None, e["module_name"]


# ---------------------------------------------------------------------------------------------
# optional: the prod instance config against a real PostgreSQL


def _pg_connect(user: str) -> Any:
    import psycopg2

    return psycopg2.connect(
        host="127.0.0.1", port=5432, dbname="test", user=user, connect_timeout=2
    )


@pytest.mark.postgres
def test_prod_instance_round_trips_a_run_on_postgres(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg2

    user = os.environ.get("PGUSER") or getpass.getuser()
    try:
        admin = _pg_connect(user)
    except psycopg2.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432 (database test, user {user}): {exc}")
    admin.autocommit = True
    schema = f"landfall_infra_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE SCHEMA "{schema}"')
    monkeypatch.setenv("PGOPTIONS", f"-csearch_path={schema}")  # libpq: a fresh schema
    for name, value in {
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": "5432",
        "DAGSTER_PG_DB": "test",
        "DAGSTER_PG_USER": user,
        "DAGSTER_PG_PASSWORD": "",  # trust auth
    }.items():
        monkeypatch.setenv(name, value)

    from dagster import DagsterInstance
    from dagster._core.storage.dagster_run import DagsterRun

    shutil.copy(INFRA / "dagster.prod.yaml", tmp_path / "dagster.prod.yaml")
    instance = DagsterInstance.from_config(str(tmp_path), config_filename="dagster.prod.yaml")
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        run = instance.run_storage.add_run(DagsterRun(job_name="landfall_infra_smoke"))
        fetched = instance.get_run_by_id(run.run_id)
        assert fetched is not None and fetched.job_name == "landfall_infra_smoke"
        assert instance.event_log_storage.get_pool_config().default_pool_limit == 8
        with admin.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            )
            assert cur.fetchone()[0] > 0, "tables were created in the fresh schema"
    finally:
        instance.dispose()
        with admin.cursor() as cur:
            cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()
