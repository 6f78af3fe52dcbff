"""The vocabulary maps names to conditions and refuses bad metadata, naming asset and file."""

from __future__ import annotations

import pytest

from orchestration.automation import AutomationConfigError, automation_condition_from_meta


def _meta(name: str | None = None, **config: object) -> dict:
    dagster: dict = {}
    if name is not None:
        dagster["automation_condition"] = name
    if config:
        dagster["automation_condition_config"] = config
    return {"dagster": dagster}


def _label(meta: dict, **kwargs: object) -> str | None:
    condition = automation_condition_from_meta(meta, asset="a/b", source="x.yml", **kwargs)
    return None if condition is None else condition.get_label()


def test_default_is_on_upstream_change() -> None:
    assert _label({}) == "on_upstream_change"
    assert _label({}, default=None) is None


def test_each_name_maps_to_its_condition() -> None:
    assert _label(_meta("on_upstream_change")) == "on_upstream_change"
    assert _label(_meta("manual_only")) is None
    assert (
        _label(_meta("on_cron_no_deps", cron_schedule="@daily")) == "on_cron_no_deps(@daily, UTC)"
    )
    assert (
        _label(_meta("on_cron_with_deps", cron_schedule="0 6 * * *", cron_timezone="utc"))
        == "on_cron_with_deps(0 6 * * *, UTC)"
    )


@pytest.mark.parametrize(
    ("meta", "reason"),
    [
        (_meta("sometimes"), "unknown automation_condition 'sometimes'"),
        (_meta("on_cron_no_deps"), "needs automation_condition_config.cron_schedule"),
        (_meta("on_cron_with_deps", cron_schedule="every day"), "invalid cron_schedule"),
        (
            _meta("on_cron_no_deps", cron_schedule="@daily", cron_timezone="Mars/Olympus"),
            "unknown cron_timezone 'Mars/Olympus'",
        ),
        (
            _meta("on_upstream_change", cron_schedule="@daily"),
            "takes no automation_condition_config",
        ),
        (
            _meta("on_cron_no_deps", cron_schedule="@daily", when="now"),
            "unknown automation_condition",
        ),
    ],
)
def test_invalid_metadata_names_asset_file_and_reason(meta: dict, reason: str) -> None:
    with pytest.raises(AutomationConfigError) as error:
        automation_condition_from_meta(meta, asset="marts/x", source="models/marts/_m.yml")
    assert str(error.value).startswith("models/marts/_m.yml: asset marts/x: ")
    assert reason in str(error.value)


def test_timezone_names_are_case_insensitive() -> None:
    condition = automation_condition_from_meta(
        _meta("on_cron_no_deps", cron_schedule="@hourly", cron_timezone="europe/paris"),
        asset="a",
        source="f",
    )
    assert "Europe/Paris" in repr(condition)
