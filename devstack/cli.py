"""`landfall`: the command line of the platform.

landfall setup          prepare a fresh clone (DuckDB extensions, dbt manifest, Dagster home)
landfall up             start the local stack (S3, Dagster UI and daemon) in the background
landfall down           stop it: every process it started; warehouse, runs and objects stay
landfall dev            `up` in the foreground with sample files dropped; Ctrl-C stops it
landfall demo           the same cascade headless; prints a summary, non-zero on any failure
landfall status         the ledger: every landed object and its state
landfall drop-samples   drop a deterministic sample set into the landing bucket
landfall burst N        drop N files at once on a fresh local stack and watch them through
landfall drop PATH... --zone Z   upload your own files into a zone's prefix
landfall wait           block until every landed file is recorded and no run is in flight
landfall sample OUT     write the sample files of every zone to a folder (nothing dropped)
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from common.settings import dagster_home, get_settings, ui_port
from devstack import verbs

if TYPE_CHECKING:
    from devstack.processes import StackRecord


def _cmd_setup(args: argparse.Namespace) -> int:
    from devstack.stack import prepare

    prepare(get_settings())
    print("landfall: setup done (DuckDB extensions, dbt manifest, Dagster home)")
    return 0


def downstream_keys() -> list:
    """The assets of the transformation and ml locations that a landed file refreshes by
    itself (`on_upstream_change`): not the manual-only training asset, not cron conditions."""
    from orchestration.automation import ON_UPSTREAM_CHANGE
    from orchestration.ml import defs as ml_defs
    from orchestration.transformation import defs as transformation_defs

    keys = []
    for defs in (transformation_defs, ml_defs):
        graph = defs.resolve_asset_graph()
        keys += sorted(
            key
            for key in graph.materializable_asset_keys
            if (condition := graph.get(key).automation_condition) is not None
            and condition.get_label() == ON_UPSTREAM_CHANGE
        )
    return keys


def _cmd_demo(args: argparse.Namespace) -> int:
    import dagster as dg

    from devstack import local_stack, progress
    from devstack.stack import dagster_bin, local_stack_running, start_dagster, stop
    from landing.warehouse import DuckDBWarehouse
    from landing.zones import load_zones

    base = get_settings()
    state = base.state_dir / "demo"
    if state.exists():
        shutil.rmtree(state)  # a demo starts from nothing, so its summary is reproducible
    os.environ["LANDFALL_STATE_DIR"] = str(state)
    os.environ.pop("LANDFALL_WAREHOUSE_PATH", None)
    os.environ["LANDFALL_S3_PORT"] = str(args.s3_port or local_stack.free_port())
    os.environ.pop("LANDFALL_S3_ENDPOINT", None)
    settings = get_settings()
    started = time.monotonic()
    zones = load_zones()
    with local_stack_running(settings) as running:
        daemon = start_dagster(
            [dagster_bin("dagster-daemon"), "run", "-w", "infra/workspace.yaml"],
            log_path=state / "daemon.log",
        )
        try:
            files = running.drop_samples(
                seed=args.seed,
                customers=args.customers,
                orders=args.orders,
                events=args.events,
                files_per_zone=args.files_per_zone,
            )
            print(f"landfall demo: dropped {len(files)} files into s3://{settings.bucket}/")
            downstream = downstream_keys()  # loads while the daemon starts its code servers
            with dg.DagsterInstance.from_config(str(running.dagster_home)) as instance:
                now, stopped = progress.watch(
                    instance, zones, list(files), downstream, daemon, args.timeout, started
                )
                if stopped:
                    print(f"landfall demo: {stopped}; see {state / 'daemon.log'}")
                    return 1
                runs = instance.get_run_records()
                partitions = {
                    z.name: len(instance.get_dynamic_partitions(z.partitions_name)) for z in zones
                }
        finally:
            stop(daemon)
    elapsed = time.monotonic() - started
    rows = progress.table_rows(DuckDBWarehouse(path=str(settings.warehouse_path)))
    print_summary("Landfall demo summary", files, partitions, runs, now, elapsed, rows)
    return 0 if now.done and now.runs_failed == 0 and now.quarantined == 0 else 1


def print_summary(
    title: str, files, partitions, runs, now, elapsed: float, rows: list[tuple[str, str, int]]
) -> None:
    """The demo's summary (`landfall demo`, `make demo-prod`): files, runs, rows per table."""
    from collections import Counter

    statuses = Counter(r.dagster_run.status.value for r in runs)
    scores = next((n for layer, t, n in rows if layer == "ml" and t == "customer_scores"), 0)
    print(f"\n{title}")
    print(
        f"  files seen          {len(files)}  (loaded {now.loaded}, quarantined "
        f"{now.quarantined}, pending {now.pending})"
    )
    print("  partitions          " + ", ".join(f"{z} {n}" for z, n in partitions.items()))
    print(
        f"  runs                {sum(statuses.values())}  "
        + ", ".join(f"{s.lower()} {n}" for s, n in sorted(statuses.items()))
    )
    print(f"  failures            {now.runs_failed}")
    print(f"  scores written      {scores}")
    print(f"  wall time           {elapsed:.1f}s")
    print("\n  | layer        | table                          |     rows |")
    print("  |--------------|--------------------------------|----------|")
    for layer, table, n in rows:
        print(f"  | {layer:<12} | {table:<30} | {n:>8} |")


def _pending(entries: list, home: str) -> list[tuple[str, str]]:
    """(zone, key) registered as partitions in the Dagster instance but not in the ledger."""
    import dagster as dg

    from landing.objects import object_key_for
    from landing.zones import load_zones

    if not (Path(home) / "dagster.yaml").exists():
        return []
    recorded = {(e.zone, e.object_key) for e in entries}
    with dg.DagsterInstance.from_config(home) as instance:
        return [
            (zone.name, key)
            for zone in load_zones()
            for key in map(object_key_for, instance.get_dynamic_partitions(zone.partitions_name))
            if (zone.name, key) not in recorded
        ]


def _cmd_status(args: argparse.Namespace) -> int:
    from devstack.local_stack import local_environment
    from landing import ledger
    from landing.warehouse import DuckDBWarehouse

    settings = get_settings()
    home = str(dagster_home(local_environment(settings)["DAGSTER_HOME"]))
    entries: list = []
    if settings.warehouse_path.exists():
        with DuckDBWarehouse(path=str(settings.warehouse_path)).connect(read_only=True) as con:
            entries = ledger.entries(con, args.zone)
    pending = [(z, k) for z, k in _pending(entries, home) if not args.zone or z == args.zone]
    ignored, unlisted = _ignored(settings)
    ignored = [o for o in ignored if not args.zone or args.zone in o.zone.split(",")]
    print(f"{'zone':<10} {'state':<12} {'rows':>8}  {'etag':<12} key / reason")
    for zone, key in pending:
        print(f"{zone:<10} {'pending':<12} {'':>8}  {'':<12} {key}")
    for e in entries:
        reason = f"  -- {e.reason}" if e.reason else ""
        print(f"{e.zone:<10} {e.state:<12} {e.rows:>8}  {e.etag[:12]:<12} {e.object_key}{reason}")
    for o in ignored:
        print(f"{o.zone:<10} {'ignored':<12} {'':>8}  {o.etag[:12]:<12} {o.key}  -- {o.reason}")
    counts: dict[str, int] = {"pending": len(pending)}
    for e in entries:
        counts[e.state] = counts.get(e.state, 0) + 1
    if ignored:
        counts["ignored"] = len(ignored)
    print("\n" + ", ".join(f"{state} {n}" for state, n in counts.items()))
    if unlisted:
        print(f"ignored objects not checked: {unlisted}")
    _print_source_freshness(home)
    return 0


def _ignored(settings) -> tuple[list, str | None]:
    """Objects under a zone prefix that no zone pattern takes, and why the bucket could not be
    listed (None when it was)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from devstack.local_stack import landing_s3_client
    from landing.zones import load_zones
    from sensors.listing import ignored_objects

    s3 = landing_s3_client(
        settings, connect_timeout=3, read_timeout=10, retries={"max_attempts": 1}
    )
    by_bucket: dict[str, list] = {}
    for zone in load_zones():
        by_bucket.setdefault(zone.bucket or settings.bucket, []).append(zone)
    try:
        return [
            o for bucket, zs in by_bucket.items() for o in ignored_objects(s3, bucket, zs)
        ], None
    except (BotoCoreError, ClientError) as exc:
        return [], f"S3 at {settings.s3_endpoint or 'AWS'}: {exc} (is the stack up? landfall dev)"


def _print_source_freshness(home: str) -> None:
    """The last `dbt source freshness` check of every raw table, from the Dagster instance."""
    import dagster as dg

    from landing.zones import load_zones
    from orchestration.source_freshness import latest_freshness

    if not (Path(home) / "dagster.yaml").exists():
        return
    keys = [dg.AssetKey(k) for zone in load_zones() for k in zone.table_keys]
    with dg.DagsterInstance.from_config(home) as instance:
        rows = latest_freshness(instance, keys)
    print(f"\n{'source freshness':<20} {'state':<8} {'lag':>8}  max_loaded_at")
    for row in rows:
        print(f"{row.asset:<20} {row.state:<8} {row.lag:>8}  {row.max_loaded_at}")


def _cmd_drop_samples(args: argparse.Namespace) -> int:
    from devstack.local_stack import landing_s3_client
    from landing.samples import sample_files

    settings = get_settings()
    s3 = landing_s3_client(settings)
    batch = args.batch or datetime.now(UTC).strftime("%Y-%m-%dT%H%M%S")
    files = sample_files(
        seed=args.seed,
        customers=args.customers,
        orders=args.orders,
        events=args.events,
        files_per_zone=args.files_per_zone,
        batch=batch,
    )
    for key, body in files.items():
        s3.put_object(Bucket=settings.bucket, Key=key, Body=body)
    print(f"dropped {len(files)} files into s3://{settings.bucket}/ (batch {batch})")
    return 0


def _cmd_burst(args: argparse.Namespace) -> int:
    from devstack import burst
    from devstack.local_stack import free_port
    from devstack.stack import local_stack_running

    base = get_settings()
    state = base.state_dir / "burst"
    if state.exists():
        shutil.rmtree(state)  # every burst starts from nothing
    os.environ["LANDFALL_STATE_DIR"] = str(state)
    os.environ.pop("LANDFALL_WAREHOUSE_PATH", None)
    os.environ["LANDFALL_S3_PORT"] = str(free_port())
    os.environ.pop("LANDFALL_S3_ENDPOINT", None)
    settings = get_settings()
    files, bad = burst.burst_files(args.files, bad_every=args.bad_every)
    with local_stack_running(settings) as running:
        print(
            f"landfall burst: {len(files)} files ({len(bad)} bad) into s3://{settings.bucket}/, "
            f"{args.runs} runs, {'whole cascade' if not args.raw_only else 'raw only'}"
        )
        runner = burst.LocalBurst(
            state, running.s3, settings.bucket, args.runs, cascade=not args.raw_only
        )
        figures = runner.run(files, args.timeout)
    print(f"landfall burst: {figures.line()}")
    return 0


def _start(args: argparse.Namespace, verb: str) -> StackRecord:
    from devstack.stack import logs_dir, start_stack

    settings = get_settings()
    print(f"landfall {verb}: starting the local stack under {settings.state_dir} ...", flush=True)
    record, started = start_stack(settings, args.ui_port)
    state = "started" if started else "already running"
    print(
        f"landfall {verb}: {state}: UI {record.ui_url}, S3 {record.s3_endpoint}, bucket "
        f"{settings.bucket}; logs in {logs_dir(settings.state_dir)}/",
        flush=True,
    )
    return record


def _cmd_up(args: argparse.Namespace) -> int:
    _start(args, "up")
    print("landfall up: `landfall down` stops it; `landfall drop-samples` drops sample files.")
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    from devstack.stack import stop_stack

    report = stop_stack(get_settings().state_dir)
    print(f"landfall down: {report.line()}")
    return 1 if report.survivors else 0


def _cmd_dev(args: argparse.Namespace) -> int:
    """`up` in the foreground: Ctrl-C (or closing the terminal) stops the whole stack."""
    from devstack.stack import running_stack, stop_stack

    settings = get_settings()
    for sig in (signal.SIGINT, signal.SIGHUP):  # even if the caller ignored them
        signal.signal(sig, _interrupt)
    try:
        record = _start(args, "dev")
        if not args.no_samples:
            import boto3

            from landing.samples import sample_files

            s3 = boto3.client("s3", endpoint_url=record.s3_endpoint, region_name="us-east-1")
            batch = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%S")
            files = sample_files(batch=batch)
            for key, body in files.items():
                s3.put_object(Bucket=settings.bucket, Key=key, Body=body)
            print(f"landfall dev: dropped {len(files)} sample files (batch {batch}).")
        print("  Watch Runs and the asset graph: raw -> staging -> marts -> ml. Ctrl-C stops.")
        while running_stack(settings.state_dir) is not None:
            time.sleep(1)
        print("landfall dev: a process of the stack exited; stopping the rest")
    except KeyboardInterrupt:
        pass
    finally:
        # a second Ctrl-C must not leave half a stack behind
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        print("landfall dev: stopping the local stack ...", flush=True)
        report = stop_stack(settings.state_dir)
        print(f"landfall dev: {report.line()}", flush=True)
    return 1 if report.survivors else 0


def _sizes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--files-per-zone", type=int, default=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="landfall", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup", help="prepare a fresh clone").set_defaults(fn=_cmd_setup)
    port = ui_port()
    up = sub.add_parser("up", help="start the local stack in the background (idempotent)")
    up.add_argument("--ui-port", type=int, default=port)
    up.set_defaults(fn=_cmd_up)
    down = sub.add_parser("down", help="stop the local stack; its state stays for the next up")
    down.set_defaults(fn=_cmd_down)
    dev = sub.add_parser("dev", help="`up` in the foreground, samples dropped; Ctrl-C stops")
    dev.add_argument("--ui-port", type=int, default=port)
    dev.add_argument("--no-samples", action="store_true", help="do not drop sample files")
    dev.set_defaults(fn=_cmd_dev)
    demo = sub.add_parser("demo", help="the cascade headless, then a summary")
    _sizes(demo)
    demo.add_argument("--timeout", type=int, default=600)
    demo.add_argument("--s3-port", type=int, default=0, help="default: a free port")
    demo.set_defaults(fn=_cmd_demo)
    status = sub.add_parser("status", help="every landed object and its state")
    status.add_argument("--zone")
    status.set_defaults(fn=_cmd_status)
    drop = sub.add_parser("drop-samples", help="drop sample files into the landing bucket")
    _sizes(drop)
    drop.add_argument("--batch", help="folder under each prefix (default: now)")
    drop.set_defaults(fn=_cmd_drop_samples)
    burst = sub.add_parser("burst", help="drop N files at once and watch them through")
    burst.add_argument("files", type=int)
    burst.add_argument("--bad-every", type=int, default=25, help="every k-th file is bad")
    burst.add_argument("--runs", choices=["per_tick", "per_file"], default="per_tick")
    burst.add_argument("--raw-only", action="store_true", help="do not wait for dbt and scores")
    burst.add_argument("--timeout", type=int, default=3600)
    burst.set_defaults(fn=_cmd_burst)
    verbs.add_verbs(sub)
    args = parser.parse_args(argv)
    # SIGTERM (a supervisor, `timeout`) stops the stack as cleanly as Ctrl-C does
    signal.signal(signal.SIGTERM, _interrupt)
    from devstack.local_stack import StackError

    try:
        return args.fn(args)
    except StackError as exc:
        print(f"landfall {args.command}: {exc}", file=sys.stderr)
        return 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
