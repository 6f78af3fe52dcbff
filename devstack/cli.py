"""`landfall`: the command line of the platform.

landfall setup          prepare a fresh clone (DuckDB extensions, dbt manifest, Dagster home)
landfall up             start the local stack (S3, Dagster UI and daemon) in the background
landfall down           stop it: every process it started; warehouse, runs and objects stay
landfall dev            `up` in the foreground with sample files dropped; Ctrl-C stops it
landfall demo           the same cascade headless; prints a summary, non-zero on any failure
landfall status         counts by state and the newest landed objects (--all, --json)
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
from devstack.processes import unwind

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


def _cmd_status(args: argparse.Namespace) -> int:
    import json

    from devstack.local_stack import local_environment
    from devstack.status import IGNORED_SCAN_LIMIT, build_view
    from landing.warehouse import DuckDBWarehouse
    from landing.zones import load_zones

    settings = get_settings()
    zones = load_zones()
    if args.zone:
        known = {z.name: z for z in zones}
        if args.zone not in known:
            print(
                f"landfall status: no zone {args.zone!r}; zones: {', '.join(sorted(known))}",
                file=sys.stderr,
            )
            return 2
        zones = [known[args.zone]]
    if args.limit < 1 or args.offset < 0:
        print(
            "landfall status: --limit must be at least 1 and --offset not negative", file=sys.stderr
        )
        return 2
    home = dagster_home(local_environment(settings)["DAGSTER_HOME"])
    limit = None if args.all else args.limit
    if settings.warehouse_path.exists():
        with DuckDBWarehouse(path=str(settings.warehouse_path)).connect(read_only=True) as con:
            view = build_view(zones, con, Path(home), limit=limit, offset=args.offset)
    else:
        view = build_view(zones, None, Path(home), limit=limit, offset=args.offset)
    ignored, complete, error = _ignored(
        settings, [z.name for z in zones], None if args.all else IGNORED_SCAN_LIMIT
    )
    view.ignored = [
        {"zone": o.zone, "key": o.key, "etag": o.etag, "reason": o.reason} for o in ignored
    ]
    view.ignored_complete, view.ignored_error = complete, error
    if args.json:
        print(json.dumps(view.to_json(), indent=2))
        return 0
    _print_status(view)
    _print_source_freshness(str(home))
    return 0


def _print_status(view) -> None:
    print(f"{'zone':<10} {'state':<12} {'rows':>8}  {'etag':<12} key / reason")
    for o in view.objects:
        reason = f"  -- {o.reason}" if o.reason else ""
        rows = "" if o.rows is None else o.rows
        print(f"{o.zone:<10} {o.state:<12} {rows:>8}  {(o.etag or '')[:12]:<12} {o.key}{reason}")
    for o in view.ignored:
        print(
            f"{o['zone']:<10} {'ignored':<12} {'':>8}  {o['etag'][:12]:<12} {o['key']}  -- "
            f"{o['reason']}"
        )
    shown = {"pending": view.counts.get("pending", 0)} | {
        state: n for state, n in view.counts.items() if n and state != "pending"
    }
    if view.ignored:
        shown["ignored"] = len(view.ignored)
    print("\n" + ", ".join(f"{state} {n}" for state, n in shown.items()))
    if view.limit is not None and (view.offset or view.next_offset is not None):
        first = view.offset + 1 if view.objects else view.offset
        more = (
            f"; next page: landfall status --offset {view.next_offset}"
            if view.next_offset is not None
            else ""
        )
        print(
            f"objects {first}-{view.offset + len(view.objects)} of {view.total}, newest first"
            f"{more} (--all lists every object)"
        )
    if view.ignored_error:
        print(f"ignored objects not checked: {view.ignored_error}")
    elif not view.ignored_complete:
        print(
            "ignored objects checked among the first listed objects only "
            "(landfall status --all lists the whole bucket)"
        )


def _ignored(
    settings, zone_names: list[str], max_listed: int | None
) -> tuple[list, bool, str | None]:
    """Objects under a zone prefix that no zone pattern takes (at most `max_listed` objects
    listed), whether the listing was complete, and why the bucket could not be listed."""
    from botocore.exceptions import BotoCoreError, ClientError

    from devstack.local_stack import landing_s3_client
    from landing.zones import load_zones
    from sensors.listing import scan_ignored

    s3 = landing_s3_client(
        settings, connect_timeout=3, read_timeout=10, retries={"max_attempts": 1}
    )
    by_bucket: dict[str, list] = {}
    for zone in load_zones():
        by_bucket.setdefault(zone.bucket or settings.bucket, []).append(zone)
    found, complete = [], True
    try:
        for bucket, zs in by_bucket.items():
            ignored, whole = scan_ignored(s3, bucket, zs, max_listed)
            found += ignored
            complete = complete and whole
    except (BotoCoreError, ClientError) as exc:
        return (
            [],
            False,
            f"S3 at {settings.s3_endpoint or 'AWS'}: {exc} (is the stack up? landfall dev)",
        )
    # an object under several zones' prefixes names them all, comma-separated
    return [o for o in found if set(o.zone.split(",")) & set(zone_names)], complete, None


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
    from devstack.stack import stop_stack

    settings = get_settings()
    for sig in (signal.SIGINT, signal.SIGHUP):  # even if the caller ignored them
        signal.signal(sig, unwind)
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
        print(
            f"landfall dev: UI {record.ui_url} (Runs, and the asset graph raw -> staging -> "
            "marts -> ml); what each run loaded, quarantined or failed is printed below. "
            "Ctrl-C stops."
        )
        _follow_runs(settings, record)
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


def _follow_runs(settings, record: StackRecord, interval_s: float = 2.0) -> None:
    """Print each run as it ends (devstack.progress.RunFeed) while the stack runs."""
    import dagster as dg

    from devstack.progress import RunFeed
    from devstack.stack import running_stack

    feed = RunFeed(record.ui_url)
    home = settings.state_dir / "dagster_home"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        feed.skip_existing(instance)
        while running_stack(settings.state_dir) is not None:
            for line in feed.poll(instance):
                print(f"  {datetime.now():%H:%M:%S} {line}", flush=True)
            time.sleep(interval_s)


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
    status = sub.add_parser(
        "status", help="counts by state and the newest landed objects (docs/cli.md)"
    )
    status.add_argument("--zone", help="one zone only")
    status.add_argument("--json", action="store_true", help="one JSON object (docs/cli.md)")
    status.add_argument("--limit", type=int, default=50, help="objects per page (default 50)")
    status.add_argument("--offset", type=int, default=0, help="skip this many (next page)")
    status.add_argument("--all", action="store_true", help="every object, no paging")
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
    signal.signal(signal.SIGTERM, unwind)
    from devstack.local_stack import StackError

    try:
        return args.fn(args)
    except StackError as exc:
        print(f"landfall {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
