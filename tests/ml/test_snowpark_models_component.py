"""Snowpark models from YAML: the churn declaration's assets, and errors that point at the line."""

from __future__ import annotations

import re
import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from orchestration.components.snowpark_models import load_snowpark_models
from orchestration.ml import defs
from orchestration.snowpark import SnowparkResource

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
def models_package(tmp_path: Path) -> Callable[[dict[str, str]], str]:
    """Write ``{model folder: defs.yaml text}`` as a fresh importable package."""
    added: list[str] = []

    def make(files: dict[str, str]) -> str:
        package = f"models_{uuid.uuid4().hex[:8]}"
        root = tmp_path / package
        root.mkdir()
        (root / "__init__.py").write_text("")
        for folder, text in files.items():
            (root / folder).mkdir()
            (root / folder / "defs.yaml").write_text(textwrap.dedent(text))
        if str(tmp_path) not in sys.path:
            sys.path.insert(0, str(tmp_path))
            added.append(str(tmp_path))
        return package

    yield make
    for path in added:
        sys.path.remove(path)


def _graph(d: dg.Definitions) -> dict[dg.AssetKey, tuple[str | None, set[dg.AssetKey]]]:
    graph = d.resolve_asset_graph()
    out = {}
    for key in graph.materializable_asset_keys:
        node = graph.get(key)
        condition = node.automation_condition
        out[key] = (condition.get_label() if condition else None, set(node.parent_keys))
    return out


def test_the_churn_declaration_builds_training_and_scoring_assets() -> None:
    graph = _graph(defs)
    inputs = {
        dg.AssetKey(["marts", "customer_order_features"]),
        dg.AssetKey(["marts", "fct_orders"]),
        dg.AssetKey(["staging", "stg_landing__events"]),
        dg.AssetKey(["staging", "stg_landing__event_items"]),
    }
    assert graph[dg.AssetKey(["ml", "customer_scores"])] == ("on_upstream_change", inputs)
    assert graph[dg.AssetKey(["ml", "churn_model"])] == (None, inputs)  # manual_only
    checks = {k.name for k in defs.resolve_asset_graph().asset_check_keys}
    assert checks == {
        "schema_change",  # main's WARN check on the scores table's columns
        "feature_null_rates",
        "scores_in_unit_interval",
        "no_null_scores",
        "one_score_per_customer_and_version",
    }


def test_a_new_yaml_file_adds_a_model(models_package: Callable[..., str]) -> None:
    loaded = load_snowpark_models(models_package({"upsell": GOOD.format(name="upsell")}))
    resources = dg.Definitions(resources={"snowpark": SnowparkResource(local=True)})
    graph = _graph(dg.Definitions.merge(loaded, resources))
    assert set(graph) == {dg.AssetKey(["ml", "upsell_model"]), dg.AssetKey(["ml", "upsell_scores"])}
    assert graph[dg.AssetKey(["ml", "upsell_scores"])][0] == "on_cron_no_deps(0 6 * * *, UTC)"


@pytest.mark.parametrize(
    ("broken", "says", "section"),
    [
        ("horizon_days: 14", "horizon_days: 0", "  model:"),
        ("features: [recency_days, frequency, orders_30d]", "features: [shoe_size]", "  model:"),
        ("scores: ml.{name}_scores", "scores: ml.scores; drop table x", "  outputs:"),
    ],
)
def test_invalid_yaml_fails_naming_the_file_and_line(
    models_package: Callable[..., str], broken: str, says: str, section: str
) -> None:
    text = GOOD.format(name="bad").replace(broken.format(name="bad"), says)
    with pytest.raises(Exception) as raised:
        load_snowpark_models(models_package({"bad": text}))
    message = _full_message(raised.value)
    lines = text.splitlines()
    line = next(i for i, row in enumerate(lines, start=1) if says in row)
    section_line = next(i for i, row in enumerate(lines, start=1) if row == section)
    # Dagster points at the offending key or, for nested settings, the section holding it.
    pointed = {int(n) for n in re.findall(r"bad/defs\.yaml:(\d+)", message)}
    assert pointed and pointed <= {section_line, line}, message
    assert says.split(": ")[1].strip("[]").split(";")[0] in message


def test_invalid_automation_names_the_asset_and_file(models_package: Callable[..., str]) -> None:
    text = GOOD.format(name="bad").replace("on_cron_no_deps", "whenever")
    with pytest.raises(Exception) as raised:
        load_snowpark_models(models_package({"bad": text}))
    message = _full_message(raised.value)
    assert "ml/bad_scores" in message and "whenever" in message and "defs.yaml" in message


def _full_message(error: BaseException) -> str:
    parts = []
    while error is not None:
        parts.append(str(error))
        error = error.__cause__ or error.__context__
    return "\n".join(parts)
