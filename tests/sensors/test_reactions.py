"""Reaction sensors from YAML fire once per materialization of the watched asset."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from sensors.reactions import (
    ReactionConfigError,
    ReactionSpec,
    build_reaction_sensor,
    load_reactions,
)

MART = dg.AssetKey(["marts", "customer_order_features"])


def test_shipped_reactions_load() -> None:
    [spec] = load_reactions()
    assert spec.when_materialized == "marts/customer_order_features" and spec.notify


def test_invalid_reaction_names_file_line_entry_and_field(tmp_path: Path) -> None:
    path = tmp_path / "reactions.yaml"
    path.write_text(
        "reactions:\n  - name: r1\n    location: moon\n    when_materialized: a/b\n"
        "    notify: true\n"
    )
    with pytest.raises(ReactionConfigError) as error:
        load_reactions(path)
    # line 3 holds `location: moon`; the field path names the entry (reactions.0)
    assert str(error.value).startswith(f"{path}:3: field 'reactions.0.location'")


def test_reaction_fires_once_per_update(landfall_env, monkeypatch) -> None:
    monkeypatch.delenv("LANDFALL_NOTIFY_WEBHOOK_URL", raising=False)
    sink = landfall_env.state_dir / "notifications.jsonl"
    before = len(sink.read_text().splitlines()) if sink.exists() else 0
    spec = ReactionSpec(
        name="t_refreshed",
        location="transformation",
        when_materialized="marts/customer_order_features",
        notify=True,
        run_job="score_churn_job",
    )
    sensor = build_reaction_sensor(spec)

    def tick(instance, cursor):
        return sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))

    with dg.instance_for_test() as instance:
        quiet = tick(instance, None)
        assert not quiet.run_requests
        instance.report_runless_asset_event(dg.AssetMaterialization(MART))
        fired = tick(instance, quiet.cursor)
        again = tick(instance, fired.cursor)
        instance.report_runless_asset_event(dg.AssetMaterialization(MART))
        second = tick(instance, again.cursor)
    assert len(fired.run_requests) == 1 and not again.run_requests
    assert len(second.run_requests) == 1
    assert second.run_requests[0].run_key != fired.run_requests[0].run_key
    lines = sink.read_text().splitlines()[before:]
    assert [json.loads(x)["reaction"] for x in lines] == ["t_refreshed", "t_refreshed"]
