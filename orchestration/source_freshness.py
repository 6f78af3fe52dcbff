"""dbt source freshness as asset checks on the raw assets.

Every dbt source table that declares `loaded_at_field` and `freshness` (warn_after / error_after)
gets a `dbt_source_freshness` check on its raw asset (the key from `meta.dagster.asset_key`).
The check runs `dbt source freshness` for that table — dbt compares max(loaded_at_field) with
the warehouse's current timestamp — and reports dbt's verdict: pass, warn (a WARN-severity
failure), error or runtime error (a failing ERROR-severity check), with `max_loaded_at` and the
lag in the check's metadata.

The checks run after each load of their raw table (any new materialization, whichever partition)
and on the cron declared on the source in the automation vocabulary:

    sources:
      - name: landing
        config:
          meta:
            dagster:
              source_freshness:
                automation_condition: on_cron_no_deps
                automation_condition_config: {cron_schedule: "0 * * * *", cron_timezone: utc}

dagster-dbt has no source-freshness runner of its own (its freshness builders compare Dagster
materialization times, not the warehouse's load timestamps), hence this module.
"""

# No `from __future__ import annotations`: Dagster reads the check's context annotation.
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from orchestration.automation import ON_CRON_NO_DEPS, automation_condition_from_meta
from orchestration.pools import WAREHOUSE_POOL

if TYPE_CHECKING:  # dagster_dbt is the transformation group's; `landfall status` reads results
    from dagster_dbt import DagsterDbtTranslator, DbtCliResource

CHECK_NAME = "dbt_source_freshness"
META_KEY = "source_freshness"
# dbt's result statuses; anything else is reported as a failing ERROR check.
PASS, WARN, ERROR, RUNTIME_ERROR = "pass", "warn", "error", "runtime error"


@dataclass(frozen=True)
class FreshnessResult:
    """One source table's `dbt source freshness` result (sources.json)."""

    unique_id: str
    status: str
    max_loaded_at: str | None
    snapshotted_at: str | None
    lag_seconds: float | None
    warn_after: str
    error_after: str
    error: str | None = None


def _period(criteria: Mapping[str, Any] | None) -> str:
    if not criteria or not criteria.get("count"):
        return ""
    return f"{criteria['count']} {criteria.get('period')}"


def parse_sources_json(sources: Mapping[str, Any]) -> dict[str, FreshnessResult]:
    """unique_id -> result, from dbt's sources.json artifact."""
    results: dict[str, FreshnessResult] = {}
    for row in sources.get("results", []):
        criteria = row.get("criteria") or {}
        results[row["unique_id"]] = FreshnessResult(
            unique_id=row["unique_id"],
            status=str(row.get("status", RUNTIME_ERROR)),
            max_loaded_at=row.get("max_loaded_at"),
            snapshotted_at=row.get("snapshotted_at"),
            lag_seconds=row.get("max_loaded_at_time_ago_in_s"),
            warn_after=_period(criteria.get("warn_after")),
            error_after=_period(criteria.get("error_after")),
            error=row.get("error") or (row.get("message") if row.get("status") != PASS else None),
        )
    return results


def _lag_text(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m"


def check_result(
    asset_key: dg.AssetKey, source: str, result: FreshnessResult | None
) -> dg.AssetCheckResult:
    """dbt's verdict as an asset check result: warn -> WARN failure, error -> ERROR failure."""
    if result is None:
        return dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=CHECK_NAME,
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"{source}: dbt source freshness returned no result for this source",
        )
    metadata: dict[str, Any] = {
        "dbt_status": result.status,
        "max_loaded_at": result.max_loaded_at or "",
        "snapshotted_at": result.snapshotted_at or "",
        "warn_after": result.warn_after,
        "error_after": result.error_after,
    }
    if result.lag_seconds is not None:
        metadata["lag_seconds"] = dg.MetadataValue.float(round(float(result.lag_seconds), 1))
        metadata["lag"] = _lag_text(result.lag_seconds)
    if result.status == PASS:
        description = f"{source}: fresh, last load {_lag_text(result.lag_seconds)} ago"
    elif result.status == WARN:
        description = (
            f"{source}: stale, last load {_lag_text(result.lag_seconds)} ago "
            f"(warn after {result.warn_after})"
        )
    elif result.status == ERROR:
        description = (
            f"{source}: stale, last load {_lag_text(result.lag_seconds)} ago "
            f"(error after {result.error_after})"
        )
    else:
        description = f"{source}: dbt source freshness failed: {result.error or result.status}"
        metadata["error"] = result.error or ""
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=CHECK_NAME,
        passed=result.status == PASS,
        severity=dg.AssetCheckSeverity.WARN
        if result.status == WARN
        else dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata=metadata,
    )


@dataclass(frozen=True)
class FreshnessSource:
    """A dbt source table with freshness configured, and the raw asset it reads."""

    unique_id: str
    selector: str  # dbt selection syntax, e.g. source:landing.orders
    asset_key: dg.AssetKey
    original_file_path: str


def sources_with_freshness(
    manifest: Mapping[str, Any], translator: "DagsterDbtTranslator"
) -> list[FreshnessSource]:
    found = []
    for unique_id, props in sorted(manifest.get("sources", {}).items()):
        config = props.get("config") or {}
        freshness = props.get("freshness") or config.get("freshness") or {}
        loaded_at = props.get("loaded_at_field") or config.get("loaded_at_field")
        if not loaded_at or not (freshness.get("warn_after") or freshness.get("error_after")):
            continue
        if not (freshness.get("warn_after") or {}).get("count") and not (
            freshness.get("error_after") or {}
        ).get("count"):
            continue
        found.append(
            FreshnessSource(
                unique_id=unique_id,
                selector=f"source:{props['source_name']}.{props['name']}",
                asset_key=translator.get_asset_key(props),
                original_file_path=str(props.get("original_file_path", "transforms")),
            )
        )
    return found


def _check_condition(props: Mapping[str, Any], asset: str, source: str) -> dg.AutomationCondition:
    """After every new load of the raw table, and on the source's cron (if it declares one)."""
    after_load = dg.AutomationCondition.any_deps_updated().with_label("after_each_load")
    settings = ((props.get("source_meta") or {}).get("dagster") or {}).get(META_KEY)
    if not settings:
        return after_load
    cron = automation_condition_from_meta(
        {"dagster": settings}, asset=f"{asset} ({CHECK_NAME})", source=source, default=None
    )
    if cron is None:
        return after_load
    if settings.get("automation_condition") != ON_CRON_NO_DEPS:
        raise ValueError(
            f"{source}: asset {asset}: {META_KEY} takes automation_condition {ON_CRON_NO_DEPS} "
            f"(a cron), got {settings.get('automation_condition')!r}"
        )
    return (after_load | cron).with_label(f"after_each_load or {cron.get_label()}")


def source_freshness_checks(
    manifest_path: Path, translator: "DagsterDbtTranslator", location: str
) -> tuple[list[dg.AssetChecksDefinition], list[dg.SensorDefinition]]:
    """One subsettable multi-check covering every source table with freshness configured, and
    the automation sensor that runs it. The raw assets live in another code location, so the
    location's `AssetSelection.all()` automation sensor does not cover these checks."""
    from dagster_dbt import DbtCliResource

    manifest = json.loads(manifest_path.read_text())
    sources = sources_with_freshness(manifest, translator)
    if not sources:
        return [], []
    by_key = {s.asset_key: s for s in sources}
    specs = []
    for source in sources:
        props = manifest["sources"][source.unique_id]
        asset = "/".join(source.asset_key.path)
        specs.append(
            dg.AssetCheckSpec(
                CHECK_NAME,
                asset=source.asset_key,
                description=(
                    f"`dbt source freshness` for {source.selector}: warn → WARN, "
                    "error → failing ERROR check."
                ),
                automation_condition=_check_condition(props, asset, source.original_file_path),
            )
        )

    @dg.multi_asset_check(
        specs=specs,
        can_subset=True,
        name="dbt_source_freshness",
        pool=WAREHOUSE_POOL,
    )
    def dbt_source_freshness(
        context: dg.AssetCheckExecutionContext, dbt: DbtCliResource
    ) -> Iterator[dg.AssetCheckResult]:
        selected = [by_key[k.asset_key] for k in sorted(context.selected_asset_check_keys)]
        yield from run_source_freshness(dbt, selected, log=context.log.info)

    sensor = dg.AutomationConditionSensorDefinition(
        f"{location}_source_freshness",
        target=dg.AssetSelection.checks(dbt_source_freshness),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Runs `dbt source freshness` after each raw load and on the sources' cron.",
    )
    return [dbt_source_freshness], [sensor]


def run_source_freshness(
    dbt: "DbtCliResource", sources: Sequence[FreshnessSource], log=print
) -> Iterator[dg.AssetCheckResult]:
    """Run `dbt source freshness` for these sources and yield one check result each."""
    args = ["source", "freshness"]
    for source in sources:
        args += ["--select", source.selector]
    invocation = dbt.cli(args, raise_on_error=False).wait()
    try:
        results = parse_sources_json(invocation.get_artifact("sources.json"))
    except FileNotFoundError:
        # dbt failed before writing its artifact (e.g. profile or connection error)
        results = {}
        log(f"dbt source freshness wrote no sources.json: {invocation.get_error()}")
    for source in sources:
        yield check_result(source.asset_key, source.selector, results.get(source.unique_id))


@dataclass(frozen=True)
class LatestFreshness:
    """The last recorded freshness check of one raw asset, for `landfall status`."""

    asset: str
    state: str  # passed / warn / failed / not run / running
    lag: str
    max_loaded_at: str
    description: str


def latest_freshness(
    instance: dg.DagsterInstance, asset_keys: Sequence[dg.AssetKey]
) -> list[LatestFreshness]:
    rows = []
    for key in asset_keys:
        record = instance.get_latest_asset_check_evaluation_record(
            dg.AssetCheckKey(key, CHECK_NAME)
        )
        evaluation = record.event.asset_check_evaluation if record and record.event else None
        if evaluation is None:
            state = "running" if record else "not run"
            rows.append(LatestFreshness("/".join(key.path), state, "", "", ""))
            continue
        metadata = {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
        if evaluation.passed:
            state = "passed"
        elif evaluation.severity == dg.AssetCheckSeverity.WARN:
            state = "warn"
        else:
            state = "failed"
        rows.append(
            LatestFreshness(
                "/".join(key.path),
                state,
                str(metadata.get("lag", "")),
                str(metadata.get("max_loaded_at", "")),
                evaluation.description or "",
            )
        )
    return rows
