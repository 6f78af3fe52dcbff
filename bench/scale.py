"""`scale 1M objects`: a zone whose ledger holds a million objects and whose Dagster state is
what its retention leaves, against the same zone at a thousand objects, in the same run.

Each size gets its own Postgres database (a Dagster instance) and DuckDB warehouse. Both sizes
keep the same number of partitions (`--scale-keep`, default KEEP = 1,000, the small zone's size),
so the only thing that differs between them is how many objects the zone has received:
- the ledger: N rows, one loaded version per object (set-wise, in DuckDB);
- the dynamic partition set: the newest `keep` keys (bench/dagster_bulk.py), as the retention
  sensor leaves it;
- Dagster's event history: materializations of those kept partitions only, as retention with
  `forget_runs` leaves it (it deletes the runs of removed partitions). The oldest IN_RUNS kept
  partitions are materialized by real runs (`dg.materialize` of a stand-in with the zone asset's
  key and partitions, PER_RUN partitions a run, tagged as the landing sensor tags a per-tick
  run; its step records the partitions without loading anything, since retention reads only
  Dagster's records of a run); the rest are runless materializations copied set-wise from one
  the API wrote. The objects themselves are not in S3: only the new ones the measured ticks
  find are.

Operations, timed at both sizes (ratio = time at the small size ÷ time at the large size):
- sensor tick: the zone's landing sensor finds 100 new objects (cursor past everything
  registered) and registers them, as the daemon applies it;
- `landfall status --zone Z` (default bounded view) and `--json`;
- the zone asset's partition stats and health through a running dagster-webserver's GraphQL:
  the first query after the ticks (Dagster rebuilds its partition status from the asset's
  whole history when the partition set changed) and, cached, the ones after it;
- one automation tick (ingestion + transformation assets) after the new objects land.
The row's ratio is the lowest of them (target ≥ 0.5: every operation flat within 2×). Retention
itself (sensors/retention.py) is timed on the large zone, each tick with the daemon's removals:
one after the measured ticks (it removes what they added beyond the limit, the oldest kept
partitions, which real runs materialized, and records those runs), one over a backlog of
CATCH_UP more (a tenth of the zone at small sizes; it deletes the recorded runs and removes the
backlog), and one more that deletes the runs the backlog's removal recorded. Every zone run is
gone at the end, or the benchmark fails.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from bench import dagster_bulk
from bench.results import record
from landing.zones import ZoneSpec, load_zones

NEW = 100
REPEATS = 3
CATCH_UP = 1_000
KEEP = 1_000  # partitions retention keeps at both sizes (the small zone's size)
IN_RUNS = 500  # the oldest kept partitions materialized by real runs (retention forgets them)
PER_RUN = 50
ZONE = "orders"
GRAPHQL = """query Zone($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) { ... on AssetNode {
    partitionStats { numMaterialized numPartitions numFailed numMaterializing } } }
  assetOrError(assetKey: $key) { ... on Asset {
    assetHealth { assetHealth materializationStatus } } }
}"""


def object_key(zone: ZoneSpec, i: int) -> str:
    """Object number i of the zone (bench.dagster_bulk.key_sql writes the same in SQL)."""
    return f"{zone.prefix}bench/part-{i:07d}.csv"


@dataclass
class Figures:
    size: int
    partitions: int
    seconds: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


def _median(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _apply(instance: dg.DagsterInstance, result: dg.SensorResult) -> None:
    """Apply a tick's partition requests as the daemon does."""
    for request in result.dynamic_partitions_requests or []:
        if isinstance(request, dg.DeleteDynamicPartitionsRequest):
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
        else:
            instance.add_dynamic_partitions(
                request.partitions_def_name, list(request.partition_keys)
            )


def _ledger(warehouse_path: Path, zone: ZoneSpec, size: int) -> None:
    """N loaded versions, one per object, recorded a second apart (set-wise, in DuckDB)."""
    import duckdb

    from landing import ledger

    con = duckdb.connect(str(warehouse_path))
    try:
        ledger.ensure_ledger(con)
        con.execute(
            f"""INSERT INTO landfall.ledger
                SELECT ?, ? || 'bench/part-' || lpad(CAST(g AS VARCHAR), 7, '0') || '.csv',
                       md5(CAST(g AS VARCHAR)), 'loaded', 10, NULL, 200,
                       TIMESTAMP '2026-01-01' + to_seconds(g)
                FROM range({int(size)}) AS t(g)""",
            [zone.name, zone.prefix],
        )
    finally:
        con.close()


@contextlib.contextmanager
def _webserver(home: Path, log: Path) -> Iterator[str]:
    """A dagster-webserver serving the ingestion location against the instance at `home`."""
    from devstack.local_stack import free_port, wait_for_http
    from devstack.stack import dagster_bin, start_dagster, stop

    port = free_port()
    # the child's instance is $DAGSTER_HOME, which `measure` points at `home`
    assert os.environ.get("DAGSTER_HOME") == str(home)
    proc = start_dagster(
        [dagster_bin("dagster-webserver"), "-h", "127.0.0.1", "-p", str(port)]
        + ["-m", "orchestration.ingestion"],
        log_path=log,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/server_info", timeout_s=300, proc=proc)
        yield url
    finally:
        stop(proc)


def _graphql(url: str, zone: ZoneSpec | None) -> dict:
    """The zone query (None: `{ version }`, which only warms the webserver up)."""
    body = (
        {"query": GRAPHQL, "variables": {"key": {"path": list(zone.asset_key_path)}}}
        if zone is not None
        else {"query": "{ version }"}
    )
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        body = json.load(response)
    if body.get("errors"):
        raise AssertionError(f"GraphQL errors: {body['errors']}")
    return body["data"]


def _status(*args: str) -> str:
    from devstack.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["status", "--zone", ZONE, *args])
    if code != 0:
        raise AssertionError(f"landfall status {' '.join(args)} exited {code}: {out.getvalue()}")
    return out.getvalue()


def _automation_defs() -> dg.Definitions:
    from orchestration.ingestion import defs as ingestion
    from orchestration.transformation import defs as transformation

    return dg.Definitions.merge(ingestion, transformation)


def measure(
    size: int,
    zone: ZoneSpec,
    s3,
    bucket: str,
    root: Path,
    keep: int = KEEP,
    database_prefix: str = "landfall_bench_scale",
) -> Figures:
    """Build the zone at `size` objects under `root` and time each operation."""
    from bench.definitions import _tick as automation_tick
    from landing.bucket import LandingBucket
    from orchestration.components.landing_zones import zone_job_name, zone_partitions
    from sensors.landing import build_landing_sensor

    zone = zone.model_copy(
        update={"retention": zone.retention.model_copy(update={"keep_partitions": keep})}
    )
    pg = dagster_bulk.Postgres()
    database = f"{database_prefix}_{size}"
    home, warehouse = root / f"home-{size}", root / f"warehouse-{size}.duckdb"
    asset_key = dg.AssetKey(list(zone.asset_key_path))
    partitions = zone_partitions(zone)
    retained = min(size, zone.retention.keep_partitions)
    figures = Figures(size=size, partitions=retained)

    dagster_bulk.fresh_database(pg, database)
    dagster_bulk.write_instance(home, pg, database)
    started = time.perf_counter()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key, partition=dagster_bulk.TEMPLATE)
        )
    in_runs = min(IN_RUNS, retained)
    dagster_bulk.register_partitions(
        pg, database, zone.partitions_name, zone.prefix, size - retained, size
    )
    dagster_bulk.copy_materializations(
        pg, database, asset_key.to_string(), zone.prefix, size - retained + in_runs, size
    )
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = _zone_runs(
            instance,
            zone,
            partitions,
            [object_key(zone, i) for i in range(size - retained, size - retained + in_runs)],
        )
    _ledger(warehouse, zone, size)
    print(
        f"  {size:,} objects registered ({retained:,} partitions kept, the oldest {in_runs:,} "
        f"materialized by {runs} runs) in {time.perf_counter() - started:.1f} s"
    )

    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["LANDFALL_WAREHOUSE_PATH"] = str(warehouse)
    os.environ["LANDFALL_BUCKET"] = bucket
    landing = LandingBucket(
        bucket=bucket,
        endpoint_url=s3.meta.endpoint_url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    sensor = build_landing_sensor(zone, zone_job_name(zone), partitions, runs="per_tick")
    defs = _automation_defs()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        # the zone's downstream models were built once: a landing is what makes them stale
        graph = defs.resolve_asset_graph()
        for key in graph.materializable_asset_keys:
            if not graph.get(key).is_partitioned:
                instance.report_runless_asset_event(dg.AssetMaterialization(key))
        # Dagster's partition status cache, built from the asset's whole history (what the
        # webserver does on the first partition query after the set changed)
        started = time.perf_counter()
        instance.get_status_by_partition(asset_key, [object_key(zone, size - 1)], partitions)
        figures.notes["status cache"] = f"{time.perf_counter() - started:.1f} s"
        started = time.perf_counter()
        _, automation_cursor = automation_tick(defs, instance, None)  # the tick before
        print(
            f"  Dagster's partition status cache built in {figures.notes['status cache']}, "
            f"first automation tick {time.perf_counter() - started:.1f} s"
        )

        cursor, ticks, landed = None, [], []
        for r in range(REPEATS):
            first = size + r * NEW
            for i in range(first, first + NEW):
                s3.put_object(Bucket=bucket, Key=object_key(zone, i), Body=b"order_id\n1\n")
            started = time.perf_counter()
            result = sensor(
                dg.build_sensor_context(
                    instance=instance, cursor=cursor, resources={"landing": landing}
                )
            )
            _apply(instance, result)
            ticks.append(time.perf_counter() - started)
            cursor = result.cursor
            landed += [object_key(zone, i) for i in range(first, first + NEW)]
            requested = sum(int(q.tags.get("landfall/files", 1)) for q in result.run_requests)
            if requested != NEW:
                raise AssertionError(f"tick {r} requested {requested} objects, expected {NEW}")
        figures.seconds["sensor tick"] = statistics.median(ticks)

        text = _status()
        if f"pending {REPEATS * NEW}, loaded {size}" not in text:
            raise AssertionError(f"unexpected status counts:\n{text[-2000:]}")
        figures.seconds["status"] = _median(_status)
        doc = json.loads(_status("--json"))
        if doc["total"] != size + REPEATS * NEW or len(doc["objects"]) != 50:
            raise AssertionError(f"unexpected status --json: total {doc['total']}")
        figures.seconds["status --json"] = _median(lambda: _status("--json"))

        with _webserver(home, root / f"webserver-{size}.log") as url:
            # the first query after the ticks changed the partition set rebuilds Dagster's
            # partition status from the asset's history; the next ones read it cached
            _graphql(url, None)  # the webserver's own first-request cost is not the query's
            started = time.perf_counter()
            stats = _graphql(url, zone)["assetNodeOrError"]["partitionStats"]
            figures.seconds["graphql after a tick"] = time.perf_counter() - started
            figures.notes["graphql"] = json.dumps(stats)
            figures.seconds["graphql cached"] = _median(lambda: _graphql(url, zone))

        for key in landed:  # the new objects land
            instance.report_runless_asset_event(dg.AssetMaterialization(asset_key, partition=key))
        requested_assets: set[str] = set()

        def one_tick() -> None:
            run_requests, _ = automation_tick(defs, instance, automation_cursor)
            requested_assets.update(
                k.to_user_string() for q in run_requests for k in q.asset_selection or []
            )

        figures.seconds["automation tick"] = _median(one_tick)
        figures.notes["automation"] = ", ".join(sorted(requested_assets)) or "nothing requested"

        if size > zone.retention.keep_partitions:
            figures.notes["retention"] = _retention(
                pg, database, zone, instance, partitions, size + REPEATS * NEW
            )
    print(
        "  "
        + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in figures.seconds.items())
        + f"; graphql partitionStats {figures.notes['graphql']}; automation requested: "
        f"{figures.notes['automation']}"
    )
    dagster_bulk.drop_database(pg, database)
    return figures


def _zone_runs(
    instance: dg.DagsterInstance,
    zone: ZoneSpec,
    partitions: dg.DynamicPartitionsDefinition,
    keys: list[str],
) -> int:
    """Real runs materializing `keys` (registered), PER_RUN a run, tagged as the landing sensor
    tags a per-tick run. The step records its partitions without loading anything: retention
    reads only Dagster's records of a run. Returns the number of runs."""
    from common.dagster_private import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    @dg.asset(key=dg.AssetKey(list(zone.asset_key_path)), partitions_def=partitions)
    def stand_in() -> dg.MaterializeResult:
        return dg.MaterializeResult()

    blocks = [keys[i : i + PER_RUN] for i in range(0, len(keys), PER_RUN)]
    for block in blocks:
        dg.materialize(
            [stand_in],
            instance=instance,
            # the benchmark's output is its figures, not each run's event log
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            tags={
                "landfall/zone": zone.name,
                "landfall/files": str(len(block)),
                ASSET_PARTITION_RANGE_START_TAG: block[0],
                ASSET_PARTITION_RANGE_END_TAG: block[-1],
            },
        )
    return len(blocks)


def _retention(pg, database, zone, instance, partitions, registered_up_to: int) -> str:
    """Ticks of the zone's retention sensor on the large zone, its cursor carried and each
    applied as the daemon does: one after the measured ticks, one over a backlog of CATCH_UP
    more handled partitions, one that deletes the runs the backlog's removal recorded."""
    from sensors.retention import build_retention_sensor

    sensor = build_retention_sensor(zone, partitions)
    cursor: str | None = None
    zone_runs = dg.RunsFilter(tags={"landfall/zone": zone.name})

    def prune() -> tuple[float, int, int, float]:
        """(seconds, partitions removed, runs deleted, of the seconds the sensor's own)."""
        nonlocal cursor
        runs_before = instance.get_runs_count(zone_runs)
        started = time.perf_counter()
        result = sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
        evaluated = time.perf_counter() - started
        _apply(instance, result)
        elapsed = time.perf_counter() - started
        cursor = result.cursor
        removed = sum(len(r.partition_keys) for r in result.dynamic_partitions_requests or [])
        return elapsed, removed, runs_before - instance.get_runs_count(zone_runs), evaluated

    steady, steady_n, steady_runs, steady_eval = prune()
    catch_up_size = min(CATCH_UP, registered_up_to // 10)
    start = registered_up_to
    asset = dg.AssetKey(list(zone.asset_key_path)).to_string()
    dagster_bulk.copy_materializations(
        pg, database, asset, zone.prefix, start, start + catch_up_size
    )
    dagster_bulk.register_partitions(
        pg, database, zone.partitions_name, zone.prefix, start, start + catch_up_size
    )
    catch_up, catch_up_n, catch_up_runs, catch_up_eval = prune()
    last, last_n, last_runs, _ = prune()
    left = instance.get_runs_count(zone_runs)
    if left or last_n:
        raise AssertionError(f"retention left {left} zone runs, removed {last_n} on its last tick")
    return (
        f"retention tick {steady:.2f} s removing {steady_n} partitions (deleting "
        f"{steady_runs} runs; sensor {steady_eval:.2f} s, the rest the daemon's removals), "
        f"{catch_up:.1f} s removing {catch_up_n:,} ({catch_up_n / catch_up:,.0f} partitions/s) "
        f"and deleting {catch_up_runs} runs (sensor {catch_up_eval:.2f} s), "
        f"{last:.2f} s deleting {last_runs} runs"
    )


def run(
    s3,
    bucket: str,
    sizes: tuple[int, int] = (1_000, 1_000_000),
    keep: int = KEEP,
    database_prefix: str = "landfall_bench_scale",
) -> None:
    """Measure both sizes and record the row; the environment, the databases and the temporary
    folder are left as found (tests/bench/test_isolation.py), whatever happens."""
    small, large = sizes
    zone = next(z for z in load_zones() if z.name == ZONE)
    print(f"scale: zone {ZONE} at {small:,} and {large:,} objects (retention keeps {keep:,})")
    saved = {
        k: os.environ.get(k) for k in ("DAGSTER_HOME", "LANDFALL_WAREHOUSE_PATH", "LANDFALL_BUCKET")
    }
    try:
        with tempfile.TemporaryDirectory(prefix="landfall-bench-scale-") as folder:
            results = {}
            for size in sizes:
                s3.create_bucket(Bucket=f"{bucket}-{size}")
                results[size] = measure(
                    size, zone, s3, f"{bucket}-{size}", Path(folder), keep, database_prefix
                )
    finally:
        for size in sizes:
            dagster_bulk.drop_database(dagster_bulk.Postgres(), f"{database_prefix}_{size}")
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    ratios = {
        op: results[small].seconds[op] / results[large].seconds[op] for op in results[small].seconds
    }
    for op, ratio in ratios.items():
        print(
            f"  {op}: {results[small].seconds[op] * 1000:.0f} ms at {small:,}, "
            f"{results[large].seconds[op] * 1000:.0f} ms at {large:,}: ratio {ratio:.2f}"
        )
    worst = min(ratios, key=ratios.get)
    retention = results[large].notes.get("retention", "retention not reached at this size")
    print(f"  {retention}")
    label = (
        f"{large // 1_000_000}M"
        if large >= 1_000_000
        else f"{large // 1000}k"
        if large >= 1000
        else str(large)
    )
    record(
        f"scale {label} objects",
        "; ".join(f"{op} {s * 1000:.0f} ms" for op, s in results[large].seconds.items())
        + f"; {retention}; Dagster's partition status rebuilt from the history in "
        + f"{results[large].notes['status cache']} (partitions kept at both sizes "
        + f"{results[large].partitions:,}; Dagster's history is what retention with forget_runs "
        + "leaves: the kept partitions' materializations)",
        f"same zone at {small:,} objects: "
        + "; ".join(f"{op} {s * 1000:.0f} ms" for op, s in results[small].seconds.items()),
        ratios[worst],
        f"≥ 0.5 (every operation flat within 2×; lowest: {worst})",
    )
