"""`make demo-prod`: the cascade with LANDFALL_ENV=prod on this machine. moto's S3 server is the
bucket, fakesnow's server (Snowflake's HTTP protocol on 127.0.0.1) is the account, and the
Dagster instance is infra/dagster.prod.yaml on the local PostgreSQL, in a database of its own
(`LANDFALL_DEMO_PG_DB`, default landfall_demo_prod, dropped and created again by each demo).

Only endpoints and credentials differ from a deployment: the code, the dbt `prod` target, the
Snowpark session and the instance configuration are the production ones. What the stand-in
cannot do, and which test covers it instead, is in docs/production.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from common.settings import PROJECT_ROOT, DemoPostgres, Settings, demo_postgres, get_settings
from devstack import local_stack, snowflake_stand_in
from devstack.stack import dagster_bin, start_dagster, stop

PROD_INSTANCE_YAML = PROJECT_ROOT / "infra" / "dagster.prod.yaml"
# What an administrator provisions on an account before the first run (docs/production.md):
# the database, and the schema the Snowpark models write to (dbt and the landing code create
# their own schemas).
PROVISIONED_SCHEMAS = ("ML",)


@dataclass
class ProdLikeStack:
    settings: Settings
    env: dict[str, str]
    s3: object
    snowflake_port: int


def recreate_database(pg: DemoPostgres) -> None:
    """The demo's own Dagster database, empty: a demo starts from nothing."""
    import psycopg2
    from psycopg2 import sql

    con = psycopg2.connect(
        host=pg.host, port=pg.port, user=pg.user, password=pg.password, dbname="postgres"
    )
    try:
        con.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
        with con.cursor() as cur:
            name = sql.Identifier(pg.database)
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
            cur.execute(sql.SQL("CREATE DATABASE {}").format(name))
    finally:
        con.close()


def write_instance_yaml(path: Path) -> None:
    """infra/dagster.prod.yaml with two capacity settings for one small machine (a cluster
    starts a run in seconds; a shared 2-core box can take minutes): fewer runs at once and a
    longer start timeout, so a slow start is not reported as a failed run."""
    import yaml

    config = yaml.safe_load(PROD_INSTANCE_YAML.read_text())
    config["concurrency"]["runs"]["max_concurrent_runs"] = 4
    config["run_monitoring"]["start_timeout_seconds"] = 900
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def prod_environment(
    settings: Settings, s3_port: int, snowflake_port: int, pg: DemoPostgres
) -> dict[str, str]:
    """The variables of every process of the prod-like stack: the deployment's names, with
    moto's endpoint and credentials, the stand-in's SNOWFLAKE_* and the demo's PostgreSQL."""
    env = local_stack.local_environment(settings)
    env.pop("LANDFALL_WAREHOUSE_PATH", None)  # no DuckDB warehouse in prod
    env.update(
        {
            "LANDFALL_S3_ENDPOINT": f"http://127.0.0.1:{s3_port}",
            # moto accepts any credentials; a deployment has an IAM role instead
            "AWS_ACCESS_KEY_ID": local_stack.LOCAL_AWS_KEY,
            "AWS_SECRET_ACCESS_KEY": local_stack.LOCAL_AWS_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "DAGSTER_PG_HOST": pg.host,
            "DAGSTER_PG_PORT": str(pg.port),
            "DAGSTER_PG_DB": pg.database,
            "DAGSTER_PG_USER": pg.user,
            "DAGSTER_PG_PASSWORD": pg.password,
            **snowflake_stand_in.snowflake_environment(snowflake_port),
            # a shared 2-core machine answers a run launch slower than Dagster's 60 s default
            "DAGSTER_GRPC_TIMEOUT_SECONDS": os.environ.get("DAGSTER_GRPC_TIMEOUT_SECONDS", "600"),
        }
    )
    return env


def provision_snowflake(settings: Settings) -> None:
    """Create the database and the provisioned schemas, through the platform's own resource."""
    import dagster as dg

    from orchestration.resources import warehouse

    database = snowflake_stand_in.DATABASE
    # the resource's connection names the database, which does not exist yet: the stand-in
    # accepts the session, as an account does for a role that may create it
    with (
        dg.build_resources({"warehouse": warehouse()}) as resources,
        resources.warehouse.connect() as con,
    ):
        con.execute(f'CREATE DATABASE IF NOT EXISTS "{database}"')
        for schema in PROVISIONED_SCHEMAS:
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{database}"."{schema}"')


@contextmanager
def prod_like_stack(
    state: Path, s3_port: int = 0, snowflake_port: int = 0
) -> Iterator[ProdLikeStack]:
    """moto's S3 and fakesnow's server on free ports, the demo's PostgreSQL database and Dagster
    home, this process's environment set to LANDFALL_ENV=prod against them; stopped on exit."""
    import boto3

    from orchestration.dbt_project import prepare_manifest

    if not snowflake_stand_in.STAND_IN_PYTHON.exists():
        raise local_stack.StackError(
            f"{snowflake_stand_in.STAND_IN_PYTHON} is missing: run `make stand-in`"
        )
    pg = demo_postgres()
    s3_port = s3_port or local_stack.free_port()
    snowflake_port = snowflake_port or local_stack.free_port()
    os.environ.update({"LANDFALL_ENV": "prod", "LANDFALL_STATE_DIR": str(state)})
    settings = get_settings()
    env = prod_environment(settings, s3_port, snowflake_port, pg)
    os.environ.update(env)
    settings = get_settings()
    home = Path(env["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (state / "sling").mkdir(parents=True, exist_ok=True)
    write_instance_yaml(home / "dagster.yaml")
    recreate_database(pg)
    local_stack.ensure_duckdb_extensions()  # Sling reads the landed CSVs locally either way
    prepare_manifest()  # the prod target's manifest (transforms/target/prod/)
    s3_server = local_stack.start_s3_server(s3_port, state / "moto.log")
    fakesnow = None
    try:
        fakesnow = snowflake_stand_in.start_fakesnow(snowflake_port, state / "fakesnow.log")
        provision_snowflake(settings)
        s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket=settings.bucket)
        yield ProdLikeStack(settings, env, s3, snowflake_port)
    finally:
        if fakesnow is not None:
            snowflake_stand_in.stop_fakesnow(fakesnow)
        stop(s3_server)


def run_demo(args: argparse.Namespace) -> int:
    """Drop the sample files, wait for raw → dbt prod → Snowpark scores, print the summary;
    non-zero on a failed run, a quarantined sample, a timeout or a missing layer."""
    import dagster as dg

    from devstack import progress
    from devstack.cli import downstream_keys, print_summary
    from landing.samples import sample_files
    from landing.zones import load_zones
    from orchestration.resources import warehouse

    state = get_settings().state_dir / "demo-prod"
    if state.exists():
        shutil.rmtree(state)  # a demo starts from nothing, so its summary is reproducible
    state.mkdir(parents=True)
    started = time.monotonic()
    with prod_like_stack(state) as stack:
        zones = load_zones()
        daemon = start_dagster(
            [dagster_bin("dagster-daemon"), "run", "-w", "infra/workspace.yaml"],
            log_path=state / "daemon.log",
        )
        try:
            files = sample_files(seed=args.seed, files_per_zone=args.files_per_zone)
            for key, body in files.items():
                stack.s3.put_object(Bucket=stack.settings.bucket, Key=key, Body=body)
            print(
                f"landfall demo-prod: dropped {len(files)} files into s3://"
                f"{stack.settings.bucket}/ (moto); Snowflake stand-in on 127.0.0.1:"
                f"{stack.snowflake_port}; Dagster instance in PostgreSQL database "
                f"{stack.env['DAGSTER_PG_DB']}"
            )
            downstream = downstream_keys()
            with dg.DagsterInstance.from_config(stack.env["DAGSTER_HOME"]) as instance:
                now, stopped = progress.watch(
                    instance, zones, list(files), downstream, daemon, args.timeout, started
                )
                runs = instance.get_run_records()
                partitions = {
                    z.name: len(instance.get_dynamic_partitions(z.partitions_name)) for z in zones
                }
            if stopped:
                print(f"landfall demo-prod: {stopped}; see {state / 'daemon.log'}")
                return 1
        finally:
            stop(daemon)
        with dg.build_resources({"warehouse": warehouse()}) as resources:
            rows = progress.table_rows(resources.warehouse)
    print_summary(
        "Landfall demo-prod summary (LANDFALL_ENV=prod: moto S3, fakesnow, Postgres instance)",
        files,
        partitions,
        runs,
        now,
        time.monotonic() - started,
        rows,
    )
    filled = {layer for layer, _, n in rows if n > 0}
    missing = [layer for layer in ("raw", "staging", "marts", "ml") if layer not in filled]
    if missing:
        print(f"landfall demo-prod: no rows in {', '.join(missing)}")
    ok = now.done and now.runs_failed == 0 and now.quarantined == 0 and not missing
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.prod_like", description=__doc__)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--files-per-zone", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=1500)
    args = parser.parse_args(argv)
    try:
        return run_demo(args)
    except local_stack.StackError as exc:
        print(f"landfall demo-prod: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
