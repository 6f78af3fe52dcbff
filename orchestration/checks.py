"""The one builder of asset check results that our own steps report (a landed file accepted, a
model's score checks): ERROR unless said otherwise, since a failed check here means bad data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg


def check_result(
    asset_key: dg.AssetKey,
    check_name: str,
    *,
    passed: bool,
    description: str,
    metadata: Mapping[str, Any] | None = None,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=check_name,
        passed=passed,
        severity=severity,
        description=description,
        metadata=dict(metadata or {}),
    )
