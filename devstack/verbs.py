"""`landfall drop`, `landfall sample` and `landfall wait`: the scriptable verbs a user (or a
script) needs to land their own files and know when the platform is done with them."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common.settings import dagster_home, get_settings

IN_FLIGHT = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


def _zone(name: str):
    from landing.zones import load_zones

    zones = {z.name: z for z in load_zones()}
    if name not in zones:
        raise SystemExit(f"landfall drop: no zone {name!r}; zones: {', '.join(sorted(zones))}")
    return zones[name]


def _s3_client():
    from devstack.local_stack import landing_s3_client

    return landing_s3_client(get_settings())


def cmd_drop(args: argparse.Namespace) -> int:
    """Upload files into a zone's prefix; the key is the file name unless --key says."""
    zone = _zone(args.zone)
    paths = [Path(p) for p in args.paths]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"landfall drop: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.key and len(paths) > 1:
        print("landfall drop: --key names one object; give one file with it", file=sys.stderr)
        return 2
    settings = get_settings()
    bucket = zone.bucket or settings.bucket
    s3 = _s3_client()
    for path in paths:
        key = zone.prefix + (args.key or path.name).lstrip("/")
        s3.upload_file(str(path), bucket, key)
        note = "" if zone.matches(key) else f"  (matches no pattern of zone {zone.name}: ignored)"
        print(f"dropped {path} -> s3://{bucket}/{key}{note}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """Write the deterministic sample files of every zone under OUT_DIR (nothing dropped)."""
    from landing.samples import sample_files

    files = sample_files(seed=args.seed, orders=args.rows, events=args.rows)
    out = Path(args.out_dir)
    for key, body in files.items():
        path = out / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    print(f"wrote {len(files)} sample files under {out}")
    return 0


def _landed_keys(zones) -> dict[tuple[str, str], str]:
    """(zone, key) -> ETag of every object in the zones' prefixes that a zone would load."""
    from landing.objects import clean_etag

    settings = get_settings()
    s3 = _s3_client()
    found = {}
    for zone in zones:
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=zone.bucket or settings.bucket, Prefix=zone.prefix):
            for item in page.get("Contents", []):
                if zone.matches(item["Key"]):
                    found[(zone.name, item["Key"])] = clean_etag(item["ETag"])
    return found


def _recorded() -> set[tuple[str, str, str]]:
    """(zone, key, etag) of every version the ledger has a verdict for."""
    import dagster as dg

    from landing import ledger
    from orchestration.resources import warehouse

    settings = get_settings()
    if settings.is_local and not settings.warehouse_path.exists():
        return set()  # nothing loaded yet
    with (
        dg.build_resources({"warehouse": warehouse()}) as resources,
        resources.warehouse.connect(read_only=True) as con,
    ):
        return {(e.zone, e.object_key, e.etag) for e in ledger.entries(con)}


def cmd_wait(args: argparse.Namespace) -> int:
    """Block until every landed object has a ledger verdict for its current version and no
    run is in flight; non-zero on timeout or on a run that failed meanwhile."""
    import dagster as dg

    from devstack.local_stack import local_environment
    from landing.zones import load_zones

    zones = load_zones()
    # the instance of $DAGSTER_HOME, else the local stack's (as `landfall status` finds it)
    home = str(dagster_home(Path(local_environment(get_settings())["DAGSTER_HOME"])))
    if not (Path(home) / "dagster.yaml").exists():
        print(f"landfall wait: no Dagster instance at {home}; start one with `landfall up`")
        return 2
    started, deadline = time.time(), time.monotonic() + args.timeout
    quiet_polls, last = 0, ""
    with dg.DagsterInstance.from_config(home) as instance:
        while True:
            landed = _landed_keys(zones)
            recorded = _recorded()
            waiting = [k for k, etag in landed.items() if (*k, etag) not in recorded]
            records = instance.get_run_records(
                filters=dg.RunsFilter(created_after=_utc(started - 1))
            )
            in_flight = [r for r in records if r.dagster_run.status.value in IN_FLIGHT]
            failed = [r for r in records if r.dagster_run.status.value == "FAILURE"]
            line = (
                f"{len(landed) - len(waiting)}/{len(landed)} objects recorded, "
                f"{len(in_flight)} runs in flight, {len(failed)} failed"
            )
            if line != last:
                print(f"  [{time.time() - started:6.1f}s] {line}", flush=True)
                last = line
            # twice in a row: a run the automation is about to request shows up on the next poll
            quiet_polls = quiet_polls + 1 if not waiting and not in_flight else 0
            if quiet_polls >= 2:
                if failed:
                    print(f"landfall wait: {len(failed)} run(s) failed since the wait started")
                    return 1
                print("landfall wait: everything landed is recorded and no run is in flight")
                return 0
            if time.monotonic() > deadline:
                print(f"landfall wait: timed out after {args.timeout}s; {line}")
                return 1
            time.sleep(args.poll)


def _utc(timestamp: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC)


def add_verbs(sub: argparse._SubParsersAction) -> None:
    drop = sub.add_parser("drop", help="upload files into a zone's prefix")
    drop.add_argument("paths", nargs="+", metavar="PATH")
    drop.add_argument("--zone", required=True)
    drop.add_argument("--key", help="object key under the zone's prefix (default: file name)")
    drop.set_defaults(fn=cmd_drop)
    wait = sub.add_parser("wait", help="block until every landed file is recorded, no run busy")
    wait.add_argument("--timeout", type=int, default=600)
    wait.add_argument("--poll", type=float, default=2.0, help="seconds between checks")
    wait.set_defaults(fn=cmd_wait)
    sample = sub.add_parser("sample", help="write the sample files of every zone to a folder")
    sample.add_argument("out_dir", metavar="OUT_DIR")
    sample.add_argument("--rows", type=int, default=400, help="orders and events per drop")
    sample.add_argument("--seed", type=int, default=7)
    sample.set_defaults(fn=cmd_sample)
