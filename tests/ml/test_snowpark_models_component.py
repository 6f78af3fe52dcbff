"""Snowpark models from YAML: each model folder gets its training and scoring assets, its jobs and
its checks with no Python change; invalid declarations fail naming the file and the line."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from common.yaml_config import YamlConfigError
from orchestration.components.snowpark_models import (
    MODELS_DIR,
    SCORE_CHECKS,
    SnowparkModelsComponent,
)
from orchestration.ml import build_definitions, defs

INPUTS = {
    dg.AssetKey(["marts", "customer_order_features"]),
    dg.AssetKey(["marts", "fct_orders"]),
    dg.AssetKey(["staging", "stg_landing__events"]),
    dg.AssetKey(["staging", "stg_landing__event_items"]),
}
CHURN = (dg.AssetKey(["ml", "churn_model"]), dg.AssetKey(["ml", "customer_scores"]))
UPSELL = (dg.AssetKey(["ml", "upsell_model"]), dg.AssetKey(["ml", "upsell_scores"]))
# every scores asset: the quality checks its step reports, and the schema-change check
SCORES_CHECKS = {*SCORE_CHECKS, "schema_change"}

GOOD = """\
type: orchestration.components.snowpark_models.SnowparkModelComponent
attributes:
  name: {name}
  outputs:
    scores: ml.{name}_scores
    history: ml.{name}_history
  model:
    horizon_days: 14
    features: [recency_days, frequency, orders_30d]
  scoring:
    meta:
      dagster:
        automation_condition: on_cron_no_deps
        automation_condition_config: {{cron_schedule: "0 6 * * *"}}
"""


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """A copy of the project's models folder, to add and remove model folders in."""
    folder = tmp_path / "models"
    shutil.copytree(MODELS_DIR, folder)
    return folder


def _add_model(models_dir: Path, folder: str, text: str) -> Path:
    (models_dir / folder).mkdir()
    path = models_dir / folder / "defs.yaml"
    path.write_text(text)
    return path


def _a_copy_of_churn(name: str) -> str:
    """The churn declaration under another name and other tables."""
    churn = (MODELS_DIR / "churn" / "defs.yaml").read_text()
    renamed = (
        churn.replace("name: churn", f"name: {name}")
        .replace("scores: ml.customer_scores", f"scores: ml.{name}_scores")
        .replace("history: ml.customer_score_history", f"history: ml.{name}_score_history")
    )
    assert renamed.count(name) == 3, "the churn declaration changed shape: update this test"
    return renamed


def _location(models_dir: Path) -> dg.Definitions:
    return build_definitions(SnowparkModelsComponent(models_dir=str(models_dir)))


def _graph(d: dg.Definitions) -> dict[dg.AssetKey, tuple[str | None, set[dg.AssetKey]]]:
    graph = d.resolve_asset_graph()
    out = {}
    for key in graph.materializable_asset_keys:
        node = graph.get(key)
        condition = node.automation_condition
        out[key] = (condition.get_label() if condition else None, set(node.parent_keys))
    return out


def _checks(d: dg.Definitions) -> dict[dg.AssetKey, set[str]]:
    out: dict[dg.AssetKey, set[str]] = {}
    for check in d.resolve_asset_graph().asset_check_keys:
        out.setdefault(check.asset_key, set()).add(check.name)
    return out


def _jobs(d: dg.Definitions) -> dict[str, set[dg.AssetKey]]:
    """Each job by name with the assets it materializes."""
    graph = d.resolve_asset_graph()
    return {job.name: set(job.selection.resolve(graph)) for job in d.jobs or []}


def _automated(d: dg.Definitions) -> set[dg.AssetKey]:
    graph = d.resolve_asset_graph()
    sensors = [s for s in d.sensors or [] if isinstance(s, dg.AutomationConditionSensorDefinition)]
    return {key for s in sensors for key in s.asset_selection.resolve(graph)}


def test_the_churn_folder_builds_its_assets_jobs_and_checks() -> None:
    model, scores = CHURN
    graph = _graph(defs)
    assert graph[scores] == ("on_upstream_change", INPUTS)
    assert graph[model] == (None, INPUTS)  # manual_only
    assert _checks(defs) == {scores: SCORES_CHECKS}
    assert _jobs(defs) == {"train_churn_job": {model}, "score_churn_job": {scores}}


def test_a_second_model_folder_gets_its_assets_jobs_and_checks(models_dir: Path) -> None:
    _add_model(models_dir, "upsell", _a_copy_of_churn("upsell"))
    location = _location(models_dir)
    dg.Definitions.validate_loadable(location)
    model, scores = UPSELL
    graph = _graph(location)
    assert set(graph) >= {*CHURN, *UPSELL}
    assert graph[model] == (None, INPUTS)
    assert graph[scores] == ("on_upstream_change", INPUTS)
    assert _checks(location) == {CHURN[1]: SCORES_CHECKS, scores: SCORES_CHECKS}
    assert _jobs(location) == {
        "train_churn_job": {CHURN[0]},
        "score_churn_job": {CHURN[1]},
        "train_upsell_job": {model},
        "score_upsell_job": {scores},
    }
    assert {*CHURN, *UPSELL} <= _automated(location)


def test_the_location_loads_without_churn(models_dir: Path) -> None:
    _add_model(models_dir, "upsell", GOOD.format(name="upsell"))
    shutil.rmtree(models_dir / "churn")
    location = _location(models_dir)
    dg.Definitions.validate_loadable(location)
    graph = _graph(location)
    assert set(graph) == set(UPSELL)
    assert graph[UPSELL[1]][0] == "on_cron_no_deps(0 6 * * *, UTC)"
    assert set(_jobs(location)) == {"train_upsell_job", "score_upsell_job"}
    assert _checks(location) == {UPSELL[1]: SCORES_CHECKS}


def test_an_empty_models_folder_loads(tmp_path: Path) -> None:
    location = _location(tmp_path)
    dg.Definitions.validate_loadable(location)
    assert not location.assets and not location.jobs


def test_a_missing_models_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(YamlConfigError, match="models_dir .*: no folder"):
        _location(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("broken", "says", "section"),
    [
        ("horizon_days: 14", "horizon_days: 0", "  model:"),
        ("features: [recency_days, frequency, orders_30d]", "features: [shoe_size]", "  model:"),
        ("scores: ml.{name}_scores", "scores: ml.scores; drop table x", "  outputs:"),
        ("name: {name}", "name: bad-name", "attributes:"),
    ],
)
def test_invalid_yaml_fails_naming_the_file_and_line(
    tmp_path: Path, broken: str, says: str, section: str
) -> None:
    text = GOOD.format(name="bad").replace(broken.format(name="bad"), says)
    _add_model(tmp_path, "bad", text)
    with pytest.raises(YamlConfigError) as raised:
        _location(tmp_path)
    message = str(raised.value)
    lines = text.splitlines()
    line = next(i for i, row in enumerate(lines, start=1) if says in row)
    section_line = next(i for i, row in enumerate(lines, start=1) if row == section)
    # the offending key or, for nested settings, the section holding it
    pointed = {int(n) for n in re.findall(r"bad/defs\.yaml:(\d+)", message)}
    assert pointed and pointed <= {section_line, line}, message
    assert says.split(": ")[1].strip("[]").split(";")[0] in message


def test_a_file_of_another_component_type_is_refused(tmp_path: Path) -> None:
    text = GOOD.format(name="other").replace("SnowparkModelComponent", "SomethingElse")
    _add_model(tmp_path, "other", text)
    with pytest.raises(YamlConfigError, match=r"other/defs\.yaml:1: field 'type'"):
        _location(tmp_path)


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda text: text, "model name churn already used by"),
        (lambda text: text.replace("name: churn", "name: churn2"), "scores table"),
    ],
)
def test_two_folders_may_not_declare_the_same_model_or_tables(
    models_dir: Path, edit: Callable[[str], str], says: str
) -> None:
    copy = _add_model(models_dir, "zz_copy", edit((MODELS_DIR / "churn" / "defs.yaml").read_text()))
    with pytest.raises(YamlConfigError, match=rf"{re.escape(str(copy))}:\d+: {says}"):
        _location(models_dir)


def test_invalid_automation_names_the_asset_and_file(tmp_path: Path) -> None:
    _add_model(tmp_path, "bad", GOOD.format(name="bad").replace("on_cron_no_deps", "whenever"))
    with pytest.raises(Exception) as raised:
        _location(tmp_path)
    message = _full_message(raised.value)
    assert "ml/bad_scores" in message and "whenever" in message and "defs.yaml" in message


def _full_message(error: BaseException) -> str:
    parts = []
    while error is not None:
        parts.append(str(error))
        error = error.__cause__ or error.__context__
    return "\n".join(parts)
