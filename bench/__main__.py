"""`make bench`: start moto's S3 server on a free port and run every benchmark against it."""

from __future__ import annotations

import argparse
import os
import signal
import tempfile

import boto3

from bench.results import wait_until_quiet
from common.settings import get_settings
from devstack import local_stack
from devstack.processes import unwind
from devstack.stack import stop
from landing.bucket import LandingBucket


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument(
        "only",
        nargs="*",
        help="sensor, ingest, definitions, scoring, burst-raw, scale, burst (default: all but "
        "burst, the whole cascade and its naive baseline, ~10 minutes)",
    )
    parser.add_argument(
        "--scale-sizes",
        default="1000,1000000",
        help="scale: the small and the large zone, in objects (default 1000,1000000)",
    )
    parser.add_argument(
        "--scale-keep",
        type=int,
        default=1000,
        help="scale: partitions retention keeps at both sizes (default 1000, the small size: "
        "only the objects received differ)",
    )
    args = parser.parse_args()
    # SIGTERM (`timeout`, a killed job) unwinds like Ctrl-C, so the `finally` blocks stop the
    # S3 server, daemons and code servers: they run in sessions of their own and outlive us
    signal.signal(signal.SIGTERM, unwind)
    selected = set(
        args.only or ["sensor", "ingest", "definitions", "scoring", "burst-raw", "scale"]
    )
    if "scoring" in selected:  # needs no S3: the warehouse file and a Snowpark session only
        from bench import scoring

        wait_until_quiet("scoring")
        scoring.run()
        selected.discard("scoring")
    if "definitions" in selected:  # no S3 needed: a generated project in a temporary folder
        from bench import definitions

        wait_until_quiet("definitions")
        definitions.run()
        selected.discard("definitions")
        if not selected:
            return
    with tempfile.TemporaryDirectory(prefix="landfall-bench-state-") as state:
        os.environ["LANDFALL_STATE_DIR"] = state
        os.environ["LANDFALL_S3_PORT"] = str(local_stack.free_port())
        os.environ.pop("LANDFALL_S3_ENDPOINT", None)
        os.environ.pop("LANDFALL_WAREHOUSE_PATH", None)
        settings = get_settings()
        local_stack.apply_local_environment(settings)
        local_stack.ensure_duckdb_extensions()
        port = int(settings.s3_endpoint.rsplit(":", 1)[1])
        server = local_stack.start_s3_server(port, settings.state_dir / "moto.log")
        try:
            s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint, region_name="us-east-1")
            landing = LandingBucket(
                bucket="bench-ingest",
                endpoint_url=settings.s3_endpoint,
                aws_access_key_id="test",
                aws_secret_access_key="test",
            )
            if "ingest" in selected:
                from bench import ingest

                s3.create_bucket(Bucket="bench-ingest")
                wait_until_quiet("ingest")
                ingest.run(s3, landing)
            if "sensor" in selected:
                from bench import sensor_tick

                s3.create_bucket(Bucket="bench-sensor")
                wait_until_quiet("sensor")
                sensor_tick.run(s3, "bench-sensor")
            if "burst-raw" in selected:
                from pathlib import Path

                from bench import burst_raw

                wait_until_quiet("burst-raw")
                burst_raw.run(s3, settings.s3_endpoint, Path(state) / "burst-raw")
            if "scale" in selected:
                from bench import scale

                small, large = (int(n) for n in args.scale_sizes.split(","))
                wait_until_quiet("scale")
                scale.run(s3, "bench-scale", (small, large), keep=args.scale_keep)
            if "burst" in selected:
                from pathlib import Path

                from bench import burst

                wait_until_quiet("burst")
                burst.run(
                    s3,
                    Path(state) / "burst",
                    files=int(os.environ.get("BURST_FILES", 1000)),
                    naive_sample=int(os.environ.get("BURST_NAIVE_SAMPLE", 6)),
                )
        finally:
            stop(server)


if __name__ == "__main__":
    main()
