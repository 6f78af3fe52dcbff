"""The README's how-tos, followed as written: each section's file blocks (```<lang> <path>) are
applied to a copy of the repository, and a check run inside that copy (its own code, its own
zones, models and dbt project) proves the result works — the new zone loads a dropped file, the
new dbt model builds, the new Snowpark model scores."""

from __future__ import annotations

import csv
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from common.settings import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
# a fenced block whose info string names a file: ```yaml landing/zones/invoices.yaml
FILE_BLOCK = re.compile(r"^```\w+ (?P<path>\S+)\n(?P<text>.*?)^```$", re.MULTILINE | re.DOTALL)
COMMAND_BLOCK = re.compile(r"^```bash\n(?P<text>.*?)^```$", re.MULTILINE | re.DOTALL)

pytestmark = pytest.mark.timeout(600)


def section(title: str) -> str:
    """The README's text under `## <title>`, up to the next `## ` heading."""
    text = README.read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README.md has no section '## {title}'"
    return match.group(1)


def file_blocks(title: str) -> dict[str, str]:
    blocks = {m["path"]: m["text"] for m in FILE_BLOCK.finditer(section(title))}
    assert blocks, f"README.md section '{title}' has no file blocks"
    return blocks


def commands(title: str, program: str) -> list[list[str]]:
    """The lines of the section's bash blocks that run `program` (comments dropped)."""
    lines = [
        line.split("#", 1)[0].strip()
        for m in COMMAND_BLOCK.finditer(section(title))
        for line in m["text"].splitlines()
    ]
    return [shlex.split(line) for line in lines if line.startswith(f"{program} ")]


def repository_copy(target: Path) -> Path:
    """The repository as committed plus uncommitted work (not what git ignores: no .venv)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        source = PROJECT_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def apply(copy: Path, blocks: dict[str, str]) -> dict[str, Path]:
    """Write each block into the copy: a path with a folder is a repository file; a bare file
    name is a file of your own (to drop), written beside the copy. Returns where each went."""
    written = {}
    for path, text in blocks.items():
        target = copy / path if "/" in path else copy.parent / "own-files" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written[path] = target
    return written


def run_check_in(copy: Path, relative: str, source: str) -> None:
    """Run a pytest module inside the copy, so every import resolves to the copy's code."""
    module = copy / relative
    module.write_text(textwrap.dedent(source) + RUNS_IN_COPY)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LANDFALL_", "SNOWFLAKE_"))},
        "PYTHONPATH": str(copy),  # ahead of the editable install's path to this repository
    }
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(module)],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]


# appended to every check module: it runs the copy's code, not this repository's
RUNS_IN_COPY = """

def test_the_copys_code_is_what_runs():
    from pathlib import Path

    from common.settings import PROJECT_ROOT

    assert Path.cwd().resolve() == PROJECT_ROOT, PROJECT_ROOT  # run_check_in's cwd: the copy
"""


def test_add_a_zone(tmp_path: Path) -> None:
    blocks = file_blocks("Add a zone")
    copy = repository_copy(tmp_path / "repo")
    written = apply(copy, blocks)
    [drop] = commands("Add a zone", "landfall drop")
    [own_file] = [p for p in blocks if "/" not in p]
    assert own_file in drop, f"the README drops {drop}, not {own_file}"
    # the README's zone maps the export's headers and null strings: read the file through it
    zone_yaml = yaml.safe_load(written["landing/zones/invoices.yaml"].read_text())
    to_column = zone_yaml.get("source_columns", {})
    nulls = set(zone_yaml.get("null_values", [])) | {""}
    with written[own_file].open(newline="") as f:
        records = [
            {to_column.get(h, h): (None if v in nulls else v) for h, v in r.items()}
            for r in csv.DictReader(f)
        ]
    expected = sorted(
        (
            int(r["invoice_id"]),
            int(r["customer_id"]),
            None if r["total"] is None else Decimal(r["total"]),
        )
        for r in records
    )
    run_check_in(
        copy,
        "tests/landing/test_howto_zone.py",
        f"""
        import subprocess
        import sys
        from decimal import Decimal

        import dagster as dg

        from landing import ledger
        from landing.warehouse import DuckDBWarehouse
        from tests.landing.helpers import ZONES, ingest, tick


        def test_the_new_zone_is_in_the_ingestion_location():
            from orchestration.ingestion import defs

            keys = defs.resolve_asset_graph().get_all_asset_keys()
            assert dg.AssetKey(["raw", "invoices"]) in keys
            assert defs.resolve_job_def("ingest_invoices_job")
            sensor = defs.resolve_sensor_def("landing_invoices_sensor")
            assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


        def test_the_dropped_file_loads(stack, tmp_path):
            # the README's own command: landfall drop <file> --zone invoices
            done = subprocess.run(
                [sys.executable, "-m", "devstack.cli", *{drop[1:]!r}],
                cwd={str(written[own_file].parent)!r}, capture_output=True, text=True,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            zone = ZONES["invoices"]
            warehouse = DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
            with dg.instance_for_test() as instance:
                result = tick(instance, zone, stack.landing, None)
                keys = [r.partition_key for r in result.run_requests]
                assert keys == ["invoices/{own_file}"], keys
                assert ingest(instance, zone, keys[0], stack.landing, warehouse).success
            with warehouse.connect(read_only=True) as con:
                rows = con.execute(
                    "select invoice_id, customer_id, total from raw.invoices order by 1"
                ).fetchall()
                states = [(e.object_key, e.state, e.rows) for e in ledger.entries(con)]
            assert rows == {expected!r}
            assert states == [("invoices/{own_file}", "loaded", {len(expected)})]
        """,
    )


def test_add_a_dbt_model(tmp_path: Path) -> None:
    blocks = file_blocks("Add a dbt model")
    [sql] = [p for p in blocks if p.endswith(".sql")]
    model = Path(sql).stem
    copy = repository_copy(tmp_path / "repo")
    apply(copy, blocks)
    run_check_in(
        copy,
        "tests/transforms/test_howto_dbt.py",
        f'''
        from pathlib import Path

        import dagster as dg
        import duckdb

        from tests.transforms.test_dbt_project import _base_env, _dbt, _write_raw


        def test_the_new_model_builds_with_its_tests(tmp_path):
            warehouse = tmp_path / "warehouse.duckdb"
            _write_raw(warehouse)
            env = {{**_base_env(), "LANDFALL_WAREHOUSE_PATH": str(warehouse)}}
            done = _dbt(["build", "--select", "+{model}"], tmp_path, env)
            assert "ERROR=0" in done.stdout and "{model}" in done.stdout
            with duckdb.connect(str(warehouse), read_only=True) as con:
                built = con.execute(
                    "select count(*), sum(revenue), sum(order_count) from marts.{model}"
                ).fetchone()
                counted = con.execute(
                    "select sum(amount), count(*) from marts.fct_orders "
                    "where is_counted and customer_id in "
                    "(select customer_id from staging.stg_landing__customers)"
                ).fetchone()
            assert built[0] > 0
            assert (built[1], built[2]) == counted  # every counted order, once


        def test_the_transformation_location_has_the_new_model():
            from orchestration.dbt_project import prepare_manifest

            prepare_manifest()  # what `landfall setup` does
            from orchestration.transformation import defs

            keys = defs.resolve_asset_graph().get_all_asset_keys()
            assert dg.AssetKey(["marts", "{model}"]) in keys
        ''',
    )


def test_add_a_snowpark_model(tmp_path: Path) -> None:
    blocks = file_blocks("Add a Snowpark model")
    [declaration] = [p for p in blocks if p.endswith("defs.yaml")]
    name = Path(declaration).parent.name
    copy = repository_copy(tmp_path / "repo")
    apply(copy, blocks)
    run_check_in(
        copy,
        "tests/ml/test_howto_snowpark.py",
        f'''
        from pathlib import Path

        import dagster as dg
        import duckdb

        from orchestration.components.snowpark_models import SnowparkModelsComponent
        from orchestration.snowpark import SnowparkResource
        from tests.ml.conftest import MARTS_ROWS


        def test_the_ml_location_has_the_new_model():
            from orchestration.ml import defs

            keys = defs.resolve_asset_graph().get_all_asset_keys()
            assert dg.AssetKey(["ml", "{name}_model"]) in keys
            assert defs.resolve_job_def("train_{name}_job")
            assert defs.resolve_job_def("score_{name}_job")


        def test_the_new_model_scores(tmp_path, seed_marts):
            warehouse = tmp_path / "warehouse.duckdb"
            seed_marts(warehouse)
            path = str(warehouse)
            built = dg.build_defs_for_component(SnowparkModelsComponent())
            spec = SnowparkModelsComponent().models()
            [ours] = [m for m in spec.values() if m.name == "{name}"]
            scores_key = dg.AssetKey(ours.outputs.scores.split("."))
            [scores] = [a for a in built.assets if scores_key in a.keys]
            with dg.instance_for_test() as instance:
                result = dg.materialize(
                    [scores],
                    instance=instance,
                    resources={{"snowpark": SnowparkResource(local=True, duckdb_path=path)}},
                    raise_on_error=False,
                )
            assert result.success
            checks = {{c.check_name: c.passed for c in result.get_asset_check_evaluations()}}
            assert checks and all(checks.values()), checks
            with duckdb.connect(str(warehouse), read_only=True) as con:
                sql = f"select customer_id, score from {{ours.outputs.scores}}"
                rows = con.execute(sql).fetchall()
            assert sorted(r[0] for r in rows) == sorted(r[0] for r in MARTS_ROWS)
            assert all(0 <= r[1] <= 1 for r in rows)
        ''',
    )


# --- the README's references hold ---------------------------------------------------------

LINK = re.compile(r"\]\((?!https?://|mailto:)(?P<target>[^)#\s]*)(?:#(?P<anchor>[^)\s]+))?\)")


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", markdown, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize(
    "page",
    [
        "README.md",
        *sorted(str(p.relative_to(PROJECT_ROOT)) for p in PROJECT_ROOT.glob("docs/*.md")),
    ],
)
def test_every_relative_link_and_anchor_resolves(page: str) -> None:
    source = PROJECT_ROOT / page
    broken = []
    for link in LINK.finditer(source.read_text()):
        target = (source.parent / link["target"]).resolve() if link["target"] else source
        missing_anchor = bool(link["anchor"]) and (
            not target.exists() or link["anchor"] not in _anchors(target.read_text())
        )
        if not target.exists() or missing_anchor:
            broken.append(link.group(0))
    assert not broken, f"{page}: {broken}"


def test_the_cli_verbs_the_readme_names_exist() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "devstack.cli", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    verbs = set(re.search(r"\{([\w,-]+)\}", done.stdout).group(1).split(","))
    named = set(re.findall(r"`landfall ([\w-]+)", section("The CLI")))
    named |= set(re.findall(r"` / `([\w-]+)`", section("The CLI")))  # `landfall up` / `down`
    assert named and named <= verbs, f"README names verbs landfall does not have: {named - verbs}"
