"""Step retries come from orchestration/retries.yaml, per asset kind, with backoff and jitter."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from orchestration import retries

ASSETS_BY_KIND = {
    "landing_zone": ("ingestion", dg.AssetKey(["raw", "orders"])),
    "dbt": ("transformation", dg.AssetKey(["marts", "customer_order_features"])),
    "snowpark": ("ml", dg.AssetKey(["ml", "customer_scores"])),
}


@pytest.mark.parametrize("kind", sorted(ASSETS_BY_KIND))
def test_every_asset_kind_runs_with_its_configured_policy(kind: str) -> None:
    location, key = ASSETS_BY_KIND[kind]
    defs = __import__(f"orchestration.{location}", fromlist=["defs"]).defs
    assets_def = defs.resolve_assets_def(key)
    policy = assets_def.op.retry_policy
    configured = getattr(retries.load_retries(), kind)
    assert policy is not None, f"{key.to_user_string()} has no retry policy"
    assert policy.max_retries == configured.max_retries
    assert policy.delay == configured.delay_seconds
    assert policy.backoff == dg.Backoff.EXPONENTIAL and policy.jitter == dg.Jitter.PLUS_MINUS


def test_an_invalid_retries_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "retries.yaml"
    bad.write_text(
        "landing_zone: {max_retries: -1, delay_seconds: 2}\n"
        "dbt: {max_retries: 2, delay_seconds: 5}\n"
        "snowpark: {max_retries: 2, delay_seconds: 5, backof: linear}\n",
        encoding="utf-8",
    )
    with pytest.raises(retries.RetryConfigError) as raised:
        retries.load_retries(bad)
    message = str(raised.value)
    assert str(bad) in message
    assert "landing_zone.max_retries" in message and "snowpark.backof" in message


def test_an_unknown_asset_kind_is_refused() -> None:
    with pytest.raises(retries.RetryConfigError, match="unknown asset kind 'sling_stream'"):
        retries.retry_policy("sling_stream")
