"""Our YAML factories as components: schema-checked, an invalid file fails definitions load
with the file, the line and the reason; the valid ones build the same assets and sensors."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
from pydantic import ValidationError

from common.yaml_config import YamlConfigError
from landing.zones import ZONES_DIR
from orchestration.components.landing_zones import LandingZonesComponent
from orchestration.components.reactions import ReactionSensorsComponent


def test_the_zones_component_builds_every_zone_under_its_usual_keys() -> None:
    defs = dg.build_defs_for_component(LandingZonesComponent())
    keys = {key.to_user_string() for a in defs.assets or [] for key in a.keys}
    assert keys == {"raw/orders", "raw/customers", "raw/events", "raw/events__items"}
    assert {s.name for s in defs.sensors or []} == {
        "landing_orders_sensor",
        "landing_customers_sensor",
        "landing_events_sensor",
        # retention prunes each zone's partition set on its own cadence
        "landing_orders_retention",
        "landing_customers_retention",
        "landing_events_retention",
    }
    assert {j.name for j in defs.jobs or []} == {
        "ingest_orders_job",
        "ingest_customers_job",
        "ingest_events_job",
    }


def test_a_bad_zone_file_fails_with_file_line_and_reason(tmp_path: Path) -> None:
    shutil.copy(ZONES_DIR / "customers.yaml", tmp_path / "customers.yaml")
    text = (ZONES_DIR / "orders.yaml").read_text()
    (tmp_path / "orders.yaml").write_text(text.replace("amount: decimal(18,2)", "amount: money"))
    line = 1 + text.splitlines().index("columns:")  # the field its validator rejects
    with pytest.raises(YamlConfigError) as error:
        dg.build_defs_for_component(LandingZonesComponent(zones_dir=str(tmp_path)))
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'orders.yaml'}:{line}: field 'columns'")
    assert "unsupported type 'money'" in message


def test_an_unknown_zone_field_points_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "orders.yaml").write_text(
        (ZONES_DIR / "orders.yaml").read_text() + "max_file_size: 10\n"
    )
    lines = (tmp_path / "orders.yaml").read_text().splitlines()
    with pytest.raises(YamlConfigError, match=rf"orders.yaml:{len(lines)}: field 'max_file_size'"):
        LandingZonesComponent(zones_dir=str(tmp_path)).zones()


def test_broken_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "orders.yaml").write_text("name: orders\nprefix: [orders/\n")
    with pytest.raises(YamlConfigError, match=r"orders.yaml:\d+: not valid YAML"):
        LandingZonesComponent(zones_dir=str(tmp_path)).zones()


def test_component_attributes_have_a_schema() -> None:
    with pytest.raises(ValidationError):
        LandingZonesComponent(zones_folder="landing/zones")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        ReactionSensorsComponent(location="warehouse")  # type: ignore[arg-type]


def test_reactions_component_builds_the_locations_sensors() -> None:
    defs = dg.build_defs_for_component(ReactionSensorsComponent(location="transformation"))
    assert [s.name for s in defs.sensors or []] == ["customer_features_refreshed"]
    assert not dg.build_defs_for_component(ReactionSensorsComponent(location="ml")).sensors


def test_a_bad_reaction_points_at_its_line(tmp_path: Path) -> None:
    reactions = tmp_path / "reactions.yaml"
    reactions.write_text(
        "reactions:\n"
        "  - name: ok_one\n"
        "    location: transformation\n"
        "    when_materialized: marts/fct_orders\n"
        "    notify: true\n"
        "  - name: bad_one\n"
        "    location: transformation\n"
        "    when_materialized: marts/fct_orders\n"
        "    notify: sometimes\n"
    )
    component = ReactionSensorsComponent(location="transformation", reactions_file=str(reactions))
    with pytest.raises(YamlConfigError, match=r"reactions.yaml:9: field 'reactions.1.notify'"):
        dg.build_defs_for_component(component)
