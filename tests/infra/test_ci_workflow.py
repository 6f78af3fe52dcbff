"""The CI workflow (.github/workflows/ci.yml): it parses, runs per code location through the
Makefile's targets, and each location's path filter covers every project file the location's
definitions import, so a change to any of them deploys that location."""

import re
import subprocess
from functools import cache
from modulefinder import ModuleFinder
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"
LOCATIONS = ["ingestion", "transformation", "ml"]
PACKAGES = ("orchestration", "sensors", "landing", "ml", "common")
# Files a location reads at definitions load, beside its imports.
SHARED_DATA = ["sensors/reactions.yaml", "orchestration/retries.yaml"]
DATA_FILES = {
    "ingestion": ["landing/zones/*.yaml", "landing/sling/*.yaml", *SHARED_DATA],
    "transformation": ["transforms/**/*", *SHARED_DATA],
    "ml": SHARED_DATA,
}


@cache
def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _filters() -> dict[str, list[str]]:
    step = next(s for s in _workflow()["jobs"]["changes"]["steps"] if s.get("id") == "filter")
    assert step["uses"].startswith("dorny/paths-filter@")
    raw = yaml.safe_load(step["with"]["filters"])

    def flatten(items) -> list[str]:  # anchors (`- *shared`) arrive as nested lists
        return [p for i in items for p in (flatten(i) if isinstance(i, list) else [i])]

    return {name: flatten(patterns) for name, patterns in raw.items()}


def _glob_regex(pattern: str) -> re.Pattern:
    """picomatch's basics as dorny/paths-filter uses them: ** spans folders, * does not."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def _covered(path: str, patterns: list[str]) -> bool:
    return any(_glob_regex(p).match(path) for p in patterns)


def _import_closure(location: str) -> set[str]:
    """Every project file reachable by imports from the location's module (statically, so
    imports inside functions count too), found by modulefinder on the repository only."""
    finder = ModuleFinder(path=[str(REPO)])
    finder.run_script(str(REPO / "orchestration" / f"{location}.py"))
    files = {
        str(Path(m.__file__).resolve().relative_to(REPO))
        for name, m in finder.modules.items()
        if m.__file__ and name.split(".")[0] in PACKAGES
    }
    return files | {f"orchestration/{location}.py"}


def _git_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    return out.split()


def test_the_workflow_parses_and_names_every_location_in_each_per_location_job() -> None:
    jobs = _workflow()["jobs"]
    assert set(jobs) == {"changes", "location", "dbt", "image", "deploy"}
    for job in ("location", "image"):
        assert jobs[job]["strategy"]["matrix"]["location"] == LOCATIONS
    assert set(LOCATIONS) <= set(_filters())
    select = next(s for s in jobs["changes"]["steps"] if s.get("id") == "locations")["run"]
    assert all(f'"{loc}"' in select for loc in LOCATIONS)  # only locations reach deploy
    # deploy: main only, after the images, only the changed locations
    deploy = jobs["deploy"]
    assert set(deploy["needs"]) == {"changes", "image"}
    assert "refs/heads/main" in deploy["if"]
    assert deploy["strategy"]["matrix"]["location"] == (
        "${{ fromJSON(needs.changes.outputs.locations) }}"
    )
    images = " ".join(s.get("run", "") for s in jobs["image"]["steps"])
    assert "infra/docker/${{ matrix.location }}.Dockerfile" in images


def test_the_workflow_runs_make_targets_that_exist() -> None:
    makefile = (REPO / "Makefile").read_text()
    runs = [s["run"] for job in _workflow()["jobs"].values() for s in job["steps"] if "run" in s]
    targets = {m for run in runs for m in re.findall(r"\bmake ([a-z][\w-]*)", run)}
    assert targets == {"test-location", "dbt-compile"}
    for target in targets:
        assert re.search(rf"^{target}:", makefile, re.M), f"Makefile has no {target} target"
    ci_run = (REPO / ".ci" / "run").read_text()
    assert "make test\n" in ci_run  # the one local entry point stays


@pytest.mark.parametrize("location", LOCATIONS)
def test_each_location_filter_covers_every_file_it_imports(location: str) -> None:
    patterns = _filters()[location]
    closure = _import_closure(location)
    assert f"orchestration/{location}.py" in closure and len(closure) > 5
    missing = sorted(f for f in closure if not _covered(f, patterns))
    assert not missing, f"{location}: path filter misses imported files {missing}"
    tracked = _git_files()
    for data_glob in DATA_FILES[location]:
        data = [f for f in tracked if _glob_regex(data_glob).match(f)]
        assert data, data_glob
        missing = [f for f in data if not _covered(f, patterns)]
        assert not missing, f"{location}: path filter misses files it reads {missing}"
    for build_file in ("pyproject.toml", "uv.lock", f"infra/docker/{location}.Dockerfile"):
        assert _covered(build_file, patterns)


def test_a_change_to_one_location_deploys_only_that_location() -> None:
    filters = {loc: _filters()[loc] for loc in LOCATIONS}
    changed = {
        "ml/scoring.py": {"ml"},
        "transforms/models/marts/customer_order_features.sql": {"transformation"},
        "landing/zones/orders.yaml": {"ingestion"},
        "orchestration/automation.py": set(LOCATIONS),
        "README.md": set(),
    }
    for path, expected in changed.items():
        assert {loc for loc, p in filters.items() if _covered(path, p)} == expected, path


def test_glob_semantics() -> None:
    assert _covered("landing/zones/orders.yaml", ["landing/**"])
    assert not _covered("landing/zones/orders.yaml", ["landing/*"])
    assert _covered("transforms/a/b.sql", ["transforms/**/*"])
