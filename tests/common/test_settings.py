"""Settings are read in one module, when asked for: a changed variable takes effect at the next
read, and a bad value fails naming the variable."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common import settings
from common.settings import PROJECT_ROOT

# where the platform's code lives; devstack only sets variables for the processes it starts
PACKAGES = ("orchestration", "landing", "sensors", "ml", "common")


def _environment_reads(path: Path) -> list[int]:
    """Lines reading os.environ / os.getenv (subscripts, .get, getenv)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
            lines.append(node.lineno)
    return lines


def test_no_module_but_settings_reads_the_environment() -> None:
    readers = {
        str(path.relative_to(PROJECT_ROOT)): lines
        for package in PACKAGES
        for path in sorted((PROJECT_ROOT / package).rglob("*.py"))
        if (lines := _environment_reads(path)) and path != Path(settings.__file__)
    }
    # the Sling process is started with this process's environment (plus its own variables)
    assert readers == {"landing/sling_loader.py": readers.get("landing/sling_loader.py", [])}
    assert len(readers["landing/sling_loader.py"]) == 1


def test_importing_reads_no_setting() -> None:
    """Bad values everywhere, and the modules that read them still import."""
    bad = {
        "LANDFALL_ENV": "staging",
        "LANDFALL_LOAD_WORKERS": "many",
        "LANDFALL_LANDING_RUNS": "sometimes",
        "LANDFALL_UI_PORT": "web",
        "LANDFALL_NOTIFY_SMTP_HOST": "smtp.example.com",  # and no recipient
    }
    modules = (
        "common.settings, landing.ingest, sensors.landing, sensors.notifications, devstack.cli"
    )
    result = subprocess.run(
        [sys.executable, "-c", f"import {modules}"],
        env={**os.environ, **bad},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_changed_variable_counts_at_the_next_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANDFALL_LOAD_WORKERS", "3")
    assert settings.load_workers() == 3
    monkeypatch.setenv("LANDFALL_LOAD_WORKERS", "5")
    assert settings.load_workers() == 5
    monkeypatch.setenv("LANDFALL_LANDING_RUNS", "per_file")
    assert settings.landing_runs() == "per_file"
    monkeypatch.delenv("LANDFALL_LANDING_RUNS")
    assert settings.landing_runs() is None


@pytest.mark.parametrize(
    ("variable", "value", "read"),
    [
        ("LANDFALL_LOAD_WORKERS", "0", settings.load_workers),
        ("LANDFALL_LOAD_WORKERS", "two", settings.load_workers),
        ("LANDFALL_LANDING_RUNS", "per_hour", settings.landing_runs),
        ("LANDFALL_RETENTION_KEEP", "none", settings.retention_keep),
        ("LANDFALL_RETENTION_INTERVAL_SECONDS", "5", settings.retention_interval_seconds),
        ("LANDFALL_UI_PORT", "-1", settings.ui_port),
        ("LANDFALL_NOTIFY_SMTP_PORT", "smtp", settings.notification_settings),
        ("LANDFALL_ENV", "staging", settings.get_settings),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, read
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=variable):
        read()


def test_notifications_need_a_recipient_with_an_smtp_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANDFALL_NOTIFY_SMTP_HOST", "smtp.example.com")
    monkeypatch.delenv("LANDFALL_NOTIFY_SMTP_TO", raising=False)
    with pytest.raises(ValueError, match="LANDFALL_NOTIFY_SMTP_TO"):
        settings.notification_settings()
    monkeypatch.setenv("LANDFALL_NOTIFY_SMTP_TO", "ops@example.com")
    sink = settings.notification_settings()
    assert (sink.smtp_host, sink.smtp_port, sink.smtp_to) == (
        "smtp.example.com",
        587,
        "ops@example.com",
    )


def test_the_dbt_target_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LANDFALL_DBT_TARGET", raising=False)
    monkeypatch.setenv("LANDFALL_ENV", "prod")
    assert settings.dbt_target() == "prod"
    monkeypatch.setenv("LANDFALL_DBT_TARGET", "ci")
    assert settings.dbt_target() == "ci"
