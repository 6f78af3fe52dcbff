"""Definitions load and automation tick on a generated platform of 500 dbt models + 200 Sling zones.

The project is generated deterministically into a temporary folder: 200 landing zones (zone YAML
plus Sling replication each, loaded by our zone factory), and a dbt project whose 200 sources
map to those zones' raw tables, 200 staging models, 200 intermediate models (chains of ten and
fan-outs from two staging models each) and 100 marts (fan-ins of three intermediates, chains
of five; some on cron conditions, some manual).

- `definitions load`: a fresh Python process builds both locations' Definitions through our
  factories and translator and validates them (what a code server does on start; timed until
  it has loaded, not until it exits), with the dbt manifest prepared ahead (ours) against the
  same load that re-parses the dbt project first (`DbtProject.preparer.prepare`, what
  `prepare_if_dev` does under `dagster dev`).
- `automation tick`: one evaluation of the automation conditions over every asset with a
  cursor, after one new file landed in each of 10 zones, on an instance holding 2 partitions
  per zone and a materialization of every model. Baseline: the same graph and instance with
  Dagster's stock `AutomationCondition.eager()` on every model instead of our vocabulary
  (`on_upstream_change` follows eager()'s rules in one node per unpartitioned asset).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.results import record

ZONES = 200
STAGING = 200
INTERMEDIATE = 200
MARTS = 100
CHAIN = 10
LOAD_TARGET_SECONDS = 5.0
TICK_TARGET_SECONDS = 2.0
REPO_ROOT = Path(__file__).resolve().parent.parent


def _table(i: int) -> str:
    return f"t{i:03d}"


def _mart_meta(j: int) -> dict | None:
    """A mix of the vocabulary on the marts; everything else inherits on_upstream_change."""
    if j % 10 == 0:
        return {
            "automation_condition": "on_cron_with_deps",
            "automation_condition_config": {
                "cron_schedule": "@daily",
                "cron_timezone": "Europe/Berlin",
            },
        }
    if j % 25 == 1:
        return {
            "automation_condition": "on_cron_no_deps",
            "automation_condition_config": {"cron_schedule": "0 6 * * *"},
        }
    if j % 50 == 3:
        return {"automation_condition": "manual_only"}
    return None


def _write_zones(root: Path) -> None:
    template = (REPO_ROOT / "landing" / "sling" / "orders.yaml").read_text()
    (root / "zones").mkdir()
    (root / "sling").mkdir()
    for i in range(ZONES):
        name = _table(i)
        zone = {
            "name": name,
            "description": f"Generated zone {name}.",
            "prefix": f"{name}/",
            "pattern": "*.csv",
            "format": "csv",
            "loader": "sling",
            "table": f"raw.{name}",
            "columns": {"id": "bigint", "customer_id": "bigint", "amount": "decimal(18,2)"},
        }
        (root / "zones" / f"{name}.yaml").write_text(yaml.safe_dump(zone, sort_keys=False))
        (root / "sling" / f"{name}.yaml").write_text(template)


def _write_dbt_project(root: Path) -> None:
    project = root / "transforms"
    for layer in ("staging", "intermediate", "marts"):
        (project / "models" / layer).mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        yaml.safe_dump(
            {
                "name": "landfall_bench",
                "version": "1.0.0",
                "config-version": 2,
                "profile": "landfall_bench",
                "model-paths": ["models"],
                "macro-paths": [str(REPO_ROOT / "transforms" / "macros")],
                "models": {
                    "landfall_bench": {
                        "+meta": {"dagster": {"automation_condition": "on_upstream_change"}},
                        **{
                            layer: {
                                "+materialized": "table" if layer == "marts" else "view",
                                "+schema": layer,
                            }
                            for layer in ("staging", "intermediate", "marts")
                        },
                    }
                },
            },
            sort_keys=False,
        )
    )
    (project / "profiles.yml").write_text(
        yaml.safe_dump(
            {
                "landfall_bench": {
                    "target": "local",
                    "outputs": {
                        "local": {
                            "type": "duckdb",
                            "path": str(root / "bench.duckdb"),
                            "schema": "main",
                        }
                    },
                }
            }
        )
    )
    staging = project / "models" / "staging"
    tables = [
        {"name": _table(i), "meta": {"dagster": {"asset_key": ["raw", _table(i)]}}}
        for i in range(ZONES)
    ]
    (staging / "_landing__sources.yml").write_text(
        yaml.safe_dump(
            {"version": 2, "sources": [{"name": "landing", "schema": "raw", "tables": tables}]}
        )
    )
    staging_models = []
    for i in range(STAGING):
        (staging / f"stg_{_table(i)}.sql").write_text(
            "select id, customer_id, amount, _landfall_file, _landfall_loaded_at\n"
            f"from {{{{ source('landing', '{_table(i)}') }}}}\n"
        )
        staging_models.append(
            {"name": f"stg_{_table(i)}", "columns": [{"name": "id", "tests": ["not_null"]}]}
        )
    (staging / "_staging__models.yml").write_text(
        yaml.safe_dump({"version": 2, "models": staging_models})
    )

    intermediate = project / "models" / "intermediate"
    for i in range(INTERMEDIATE):
        # fan-out: every staging model feeds two intermediates; chains of CHAIN models
        parents = [f"stg_{_table(i)}", f"stg_{_table((i + 7) % STAGING)}"]
        if i % CHAIN:
            parents.append(f"int_{i - 1:03d}")
        union = "\nunion all\n".join(
            f"select id, customer_id, amount from {{{{ ref('{p}') }}}}" for p in parents
        )
        (intermediate / f"int_{i:03d}.sql").write_text(union + "\n")

    marts = project / "models" / "marts"
    mart_models = []
    for j in range(MARTS):
        parents = [f"int_{2 * j:03d}", f"int_{2 * j + 1:03d}", f"int_{(j * 13) % INTERMEDIATE:03d}"]
        if j % 5:
            parents.append(f"mart_{j - 1:03d}")
        union = "\nunion all\n".join(
            f"select customer_id, amount from {{{{ ref('{p}') }}}}" for p in dict.fromkeys(parents)
        )
        (marts / f"mart_{j:03d}.sql").write_text(
            f"select customer_id, sum(amount) as amount from (\n{union}\n) group by customer_id\n"
        )
        meta = _mart_meta(j)
        mart_models.append(
            {
                "name": f"mart_{j:03d}",
                **({"config": {"meta": {"dagster": meta}}} if meta else {}),
                "columns": [{"name": "customer_id", "tests": ["not_null"]}],
            }
        )
    (marts / "_marts__models.yml").write_text(yaml.safe_dump({"version": 2, "models": mart_models}))


def generate(root: Path) -> Path:
    """Write the zones and the dbt project under `root`; returns the dbt project folder."""
    _write_zones(root)
    _write_dbt_project(root)
    return root / "transforms"


def _dbt_project(root: Path):
    from dagster_dbt import DbtProject

    # the preparer runs `dbt` from PATH: this environment's, whether or not it is activated
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ["PATH"].split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ["PATH"]

    project_dir = root / "transforms"
    return DbtProject(project_dir=project_dir, profiles_dir=project_dir, target="local")


def build_ingestion(root: Path):
    """The ingestion location over the generated zones, built by our zone component."""
    import dagster as dg

    import landing.zones
    from orchestration.automation_sensors import automation_sensors
    from orchestration.components.landing_zones import LandingZonesComponent
    from orchestration.resources import landing_bucket, warehouse

    # the generated replications while building, not the repo's; restored after, so the
    # benchmarks that run next in the same process see the repository's (make bench)
    saved, landing.zones.SLING_DIR = landing.zones.SLING_DIR, root / "sling"
    try:
        zones = dg.build_defs_for_component(LandingZonesComponent(zones_dir=str(root / "zones")))
    finally:
        landing.zones.SLING_DIR = saved
    return dg.Definitions(
        assets=zones.assets,
        jobs=zones.jobs,
        sensors=[*(zones.sensors or []), *automation_sensors("ingestion", zones.assets or [])],
        resources={"landing": landing_bucket(), "warehouse": warehouse()},
    )


def build_transformation(root: Path, translator=None, reparse: bool = False):
    """The transformation location over the generated dbt project, through our translator."""
    # not `orchestration.transformation`: importing it builds this repository's project too
    from orchestration.transformation_definitions import build_definitions

    project = _dbt_project(root)
    if reparse:
        project.preparer.prepare(project)
    return build_definitions(project, translator)


def _child(root: Path, location: str, mode: str) -> None:
    """One code-server-like load in this fresh process; prints the phases as JSON."""
    started = time.perf_counter()
    import dagster as dg

    imported = time.perf_counter()
    if location == "ingestion":
        defs = build_ingestion(root)
    else:
        defs = build_transformation(root, reparse=mode == "reparse")
    built = time.perf_counter()
    dg.Definitions.validate_loadable(defs)
    defs.get_repository_def().get_all_jobs()  # resolve jobs as the code server does
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "import_dagster": round(imported - started, 3),
                "build": round(built - imported, 3),
                "validate": round(done - built, 3),
            }
        ),
        flush=True,
    )


def _load_once(root: Path, location: str, mode: str) -> tuple[float, dict]:
    """Seconds from spawning a fresh interpreter until its definitions are loaded and
    validated: when a code server could start serving. Its exit (tearing down 500 models'
    objects, about a second here) is waited for but not counted: a code server does not exit."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "DAGSTER_HOME": str(root / "home")}
    # a deployed code server imports compiled bytecode (the image is built with it)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.perf_counter()
    with subprocess.Popen(
        [sys.executable, "-m", "bench.definitions", "--child", str(root), location, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO_ROOT,
        env=env,
    ) as child:
        assert child.stdout is not None
        line = child.stdout.readline()  # the child prints its phases once it has loaded
        loaded = time.perf_counter() - started
        child.stdout.read()
    if child.returncode != 0 or not line.strip():
        raise RuntimeError(f"loading {location} ({mode}) failed with exit code {child.returncode}")
    return loaded, json.loads(line)


def bench_load(root: Path, repeats: int = 2) -> None:
    """Each location loads in its own code server: the workspace is loaded when the slower
    one is. The first load of each kind only warms the bytecode cache and is not counted."""
    print(f"definitions load: {ZONES} zones + {STAGING + INTERMEDIATE + MARTS} dbt models")
    runs = {
        ("ingestion", "prepared"): [],
        ("transformation", "prepared"): [],
        ("transformation", "reparse"): [],
    }
    for location, mode in runs:
        _load_once(root, location, mode)  # warm-up
    for _ in range(repeats):
        for (location, mode), samples in runs.items():
            wall, phases = _load_once(root, location, mode)
            samples.append(wall)
            print(f"  {location} ({mode}): {wall:.2f} s wall (in process: {phases})")
    median = {run: statistics.median(samples) for run, samples in runs.items()}
    ingestion = median[("ingestion", "prepared")]
    ours = max(ingestion, median[("transformation", "prepared")])
    baseline = max(ingestion, median[("transformation", "reparse")])
    print(
        f"  median: ingestion {ingestion:.2f} s, transformation prepared "
        f"{median[('transformation', 'prepared')]:.2f} s, re-parsed "
        f"{median[('transformation', 'reparse')]:.2f} s"
    )
    record(
        f"definitions load {STAGING + INTERMEDIATE + MARTS} models + {ZONES} zones",
        f"{ours:.2f} s",
        f"{baseline:.2f} s",
        baseline / ours,
        f"< {LOAD_TARGET_SECONDS:.0f} s",
    )


def _tick(defs, instance, cursor):
    """One evaluation as the daemon runs an automation condition sensor's tick: the evaluator
    plus run requests and the new cursor (Dagster's `AutomationTickEvaluationContext`).

    `dg.evaluate_automation_conditions` is not used here: its cursor serialization reads the
    dynamic partitions from storage once per subset, uncached (97% of a tick on this graph),
    which the daemon's path does not do."""
    import logging

    import dagster as dg
    from dagster._core.definitions.asset_daemon_cursor import AssetDaemonCursor
    from dagster._core.definitions.automation_tick_evaluation_context import (
        AutomationTickEvaluationContext,
    )

    cursor = cursor or AssetDaemonCursor.empty()
    context = AutomationTickEvaluationContext(
        evaluation_id=cursor.evaluation_id + 1,
        instance=instance,
        asset_graph=defs.resolve_asset_graph(),
        cursor=cursor,
        materialize_run_tags={},
        observe_run_tags={},
        auto_observe_asset_keys=set(),
        asset_selection=dg.AssetSelection.all(),
        logger=logging.getLogger("bench.automation_tick"),
        emit_backfills=False,
    )
    run_requests, new_cursor, _ = context.evaluate()
    return run_requests, new_cursor


def _timed_tick(defs, instance, cursor, repeats: int = 3) -> tuple[float, list]:
    times, run_requests = [], []
    for _ in range(repeats):  # evaluating does not change the instance: same inputs each time
        started = time.perf_counter()
        run_requests, _ = _tick(defs, instance, cursor)
        times.append(time.perf_counter() - started)
    return statistics.median(times), run_requests


def _requested(run_requests) -> set[str]:
    return {key.to_user_string() for r in run_requests for key in r.asset_selection or []}


def bench_tick(root: Path, repeats: int = 3) -> None:
    import dagster as dg

    from orchestration.translation import LandfallDbtTranslator

    class StockEagerTranslator(LandfallDbtTranslator):
        def get_automation_condition(self, dbt_resource_props):
            if dbt_resource_props["resource_type"] == "source":
                return None
            return dg.AutomationCondition.eager()

    def all_assets(translator=None) -> dg.Definitions:
        locations = (build_ingestion(root), build_transformation(root, translator))
        return dg.Definitions(
            assets=[a for d in locations for a in d.assets or []],
            resources={k: v for d in locations for k, v in (d.resources or {}).items()},
        )

    ours_defs, baseline_defs = all_assets(), all_assets(StockEagerTranslator())
    graph = ours_defs.resolve_asset_graph()
    models = [k for k in graph.materializable_asset_keys if k.path[0] != "raw"]
    print(f"automation tick over {len(graph.materializable_asset_keys)} assets")
    (root / "instance").mkdir(exist_ok=True)
    with dg.instance_for_test(temp_dir=str(root / "instance")) as instance:
        for i in range(ZONES):
            partitions = [f"{_table(i)}/{n}.csv" for n in range(2)]
            instance.add_dynamic_partitions(f"landing_{_table(i)}", partitions)
            for partition in partitions:
                instance.report_runless_asset_event(
                    dg.AssetMaterialization(["raw", _table(i)], partition=partition)
                )
        for key in models:
            instance.report_runless_asset_event(dg.AssetMaterialization(key))
        cursors = {}
        for name, defs in (("ours", ours_defs), ("baseline", baseline_defs)):
            started = time.perf_counter()
            _, cursors[name] = _tick(defs, instance, None)
            print(f"  {name}: first evaluation (no cursor) {time.perf_counter() - started:.2f} s")
        quiet, _ = _timed_tick(ours_defs, instance, cursors["ours"], repeats)
        print(f"  ours: quiet tick (nothing new) {quiet:.2f} s")
        for i in range(0, ZONES, ZONES // 10):  # one new file in each of 10 zones
            partition = f"{_table(i)}/new.csv"
            instance.add_dynamic_partitions(f"landing_{_table(i)}", [partition])
            instance.report_runless_asset_event(
                dg.AssetMaterialization(["raw", _table(i)], partition=partition)
            )
        ours, run_requests = _timed_tick(ours_defs, instance, cursors["ours"], repeats)
        baseline, baseline_requests = _timed_tick(
            baseline_defs, instance, cursors["baseline"], repeats
        )
    requested = _requested(run_requests)
    print(
        f"  tick after 10 new files: ours {ours:.2f} s ({len(requested)} assets requested: the "
        f"new files' staging models and what follows them), stock eager {baseline:.2f} s "
        f"({len(_requested(baseline_requests))} requested)"
    )
    staging = {key for key in requested if key.startswith("staging/")}
    expected = {f"staging/stg_{_table(i)}" for i in range(0, ZONES, ZONES // 10)}
    if staging != expected:
        raise AssertionError(f"expected exactly {sorted(expected)} in staging, got {staging}")
    record(
        f"automation tick {len(graph.materializable_asset_keys)} assets",
        f"{ours:.2f} s",
        f"{baseline:.2f} s",
        baseline / ours,
        f"< {TICK_TARGET_SECONDS:.0f} s",
    )


def run() -> None:
    with tempfile.TemporaryDirectory(prefix="landfall-bench-defs-") as folder:
        root = Path(folder)
        generate(root)
        project = _dbt_project(root)
        started = time.perf_counter()
        project.preparer.prepare(project)  # build time: the manifest ships with the image
        print(f"prepared the dbt manifest in {time.perf_counter() - started:.1f} s (build time)")
        bench_load(root)
        bench_tick(root)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(Path(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        run()
