"""Schema changes between two materializations of a table asset, in one place.

Every table materialization carries its columns as `dagster/column_schema` (read from the
warehouse after the write, see orchestration/table_metadata.py). This module compares a new
schema with the previous materialization's:

- `schema_change_metadata` adds the diff to the new materialization's metadata;
- `schema_change_checks` builds a `schema_change` check per table asset, run after each
  materialization: passed when nothing changed, a WARN failure naming the added, removed and
  retyped columns, an ERROR failure when the table no longer meets its contract (the zone's
  declared column types for raw tables, the enforced dbt model contract for marts) naming the
  column and both types.
"""

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

CHECK_NAME = "schema_change"
COLUMN_SCHEMA = "dagster/column_schema"
CONTRACT_KEY = "landfall/contract"  # JSON {column: declared type} on raw asset specs
DIFF_KEY = "landfall/schema_diff"

# Spellings of one type across YAML, DuckDB's information_schema and dbt contracts.
_ALIASES = {
    "INT8": "BIGINT",
    "LONG": "BIGINT",
    "INT4": "INTEGER",
    "INT": "INTEGER",
    "STRING": "VARCHAR",
    "TEXT": "VARCHAR",
    "FLOAT8": "DOUBLE",
    "DOUBLE PRECISION": "DOUBLE",
    "BOOL": "BOOLEAN",
    "TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE",
    "TIMESTAMP_NTZ": "TIMESTAMP",
    "DATETIME": "TIMESTAMP",
    "NUMERIC": "DECIMAL",
}


def normalise_type(type_name: str) -> str:
    """'decimal(18, 2)' -> 'DECIMAL(18,2)', 'timestamptz' -> 'TIMESTAMP WITH TIME ZONE'."""
    text = re.sub(r"\s+", " ", str(type_name).strip().upper())
    text = re.sub(r"\s*([(),])\s*", r"\1", text)
    base, _, args = text.partition("(")
    base = _ALIASES.get(base, base)
    return f"{base}({args}" if args else base


def _columns(schema: dg.TableSchema | None) -> dict[str, str]:
    if schema is None:
        return {}
    return {c.name.lower(): normalise_type(c.type) for c in schema.columns}


@dataclass(frozen=True)
class SchemaDiff:
    added: dict[str, str] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)
    retyped: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.retyped)

    def describe(self) -> str:
        parts = [f"added {c} {t}" for c, t in self.added.items()]
        parts += [f"removed {c} {t}" for c, t in self.removed.items()]
        parts += [f"{c} changed type {old} -> {new}" for c, (old, new) in self.retyped.items()]
        return "; ".join(parts) or "no change"

    def as_json(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "removed": self.removed,
            "retyped": {c: {"from": o, "to": n} for c, (o, n) in self.retyped.items()},
        }


def diff_schemas(previous: dg.TableSchema | None, current: dg.TableSchema) -> SchemaDiff:
    """What changed from `previous` to `current`; no previous schema means no change."""
    if previous is None:
        return SchemaDiff()
    old, new = _columns(previous), _columns(current)
    return SchemaDiff(
        added={c: t for c, t in new.items() if c not in old},
        removed={c: t for c, t in old.items() if c not in new},
        retyped={c: (old[c], t) for c, t in new.items() if c in old and old[c] != t},
    )


def contract_breaks(current: dg.TableSchema, contract: Mapping[str, str]) -> list[str]:
    """Each declared column the table does not meet, with the contract's and the table's type."""
    columns = _columns(current)
    breaks = []
    for column, declared in contract.items():
        want = normalise_type(declared)
        have = columns.get(column.lower())
        if have is None:
            breaks.append(f"column {column}: contract {want}, missing from the table")
        elif have != want:
            breaks.append(f"column {column}: contract {want}, table {have}")
    return breaks


def _schema_of(entry: dg.EventLogEntry | None) -> dg.TableSchema | None:
    materialization = entry.asset_materialization if entry else None
    value = materialization.metadata.get(COLUMN_SCHEMA) if materialization else None
    return value.value if value is not None else None


def previous_schema(instance: dg.DagsterInstance, asset_key: dg.AssetKey) -> dg.TableSchema | None:
    """The column schema of the asset's latest materialization (any partition)."""
    return _schema_of(instance.get_latest_materialization_event(asset_key))


def schema_change_metadata(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, current: dg.TableSchema
) -> dict[str, Any]:
    """Materialization metadata: the diff against the previous materialization, if any."""
    diff = diff_schemas(previous_schema(instance, asset_key), current)
    if not diff.changed:
        return {}
    return {
        DIFF_KEY: dg.MetadataValue.json(diff.as_json()),
        "landfall/schema_change": diff.describe(),
    }


def with_schema_changes(
    instance: dg.DagsterInstance, events: Iterable[Any], asset_keys: Iterable[dg.AssetKey]
) -> Iterator[Any]:
    """Pass dagster-dbt's event stream through, adding the schema diff to each model's output
    (dagster-dbt names outputs `asset_key.to_python_identifier()`)."""
    by_output = {key.to_python_identifier(): key for key in asset_keys}
    for event in events:
        key = by_output.get(getattr(event, "output_name", ""))
        if isinstance(event, dg.Output) and key and COLUMN_SCHEMA in (event.metadata or {}):
            schema = event.metadata[COLUMN_SCHEMA]
            extra = schema_change_metadata(instance, key, getattr(schema, "value", schema))
            if extra:
                event = event.with_metadata({**event.metadata, **extra})
        yield event


def evaluate(
    asset_key: dg.AssetKey,
    previous: dg.TableSchema | None,
    current: dg.TableSchema | None,
    contract: Mapping[str, str] | None,
) -> dg.AssetCheckResult:
    """The `schema_change` verdict for one table from its last two schemas."""
    if current is None:
        return dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=CHECK_NAME,
            passed=True,
            description="no materialization with a column schema yet",
        )
    diff = diff_schemas(previous, current)
    breaks = contract_breaks(current, contract or {})
    metadata = {"diff": dg.MetadataValue.json(diff.as_json()), "contract_breaks": breaks}
    if breaks:
        return dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=CHECK_NAME,
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            description="contract broken: " + "; ".join(breaks),
            metadata=metadata,
        )
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=CHECK_NAME,
        passed=not diff.changed,
        severity=dg.AssetCheckSeverity.WARN,
        description=("schema changed: " + diff.describe()) if diff.changed else "no change",
        metadata=metadata,
    )


def contract_from_spec(spec: dg.AssetSpec) -> dict[str, str] | None:
    raw = (spec.metadata or {}).get(CONTRACT_KEY)
    return json.loads(getattr(raw, "value", raw)) if raw else None


def dbt_contracts(manifest: Mapping[str, Any], translator: Any) -> dict[dg.AssetKey, dict]:
    """Enforced dbt model contracts: asset key -> {column: data_type}."""
    contracts = {}
    for props in manifest.get("nodes", {}).values():
        config = props.get("config") or {}
        if props.get("resource_type") != "model" or not (config.get("contract") or {}).get(
            "enforced"
        ):
            continue
        contracts[translator.get_asset_key(props)] = {
            name: column["data_type"]
            for name, column in (props.get("columns") or {}).items()
            if column.get("data_type")
        }
    return contracts


def schema_change_checks(
    asset_keys: Iterable[dg.AssetKey],
    contracts: Mapping[dg.AssetKey, Mapping[str, str] | None],
    name: str,
) -> list[dg.AssetChecksDefinition]:
    """One subsettable multi-check: `schema_change` on every table asset, after each
    materialization, comparing it with the one before."""
    keys = sorted(set(asset_keys), key=lambda k: k.to_user_string())
    if not keys:
        return []
    after_each = dg.AutomationCondition.any_deps_updated().with_label("after_each_materialization")
    specs = [
        dg.AssetCheckSpec(
            CHECK_NAME,
            asset=key,
            description=(
                "Columns and types against the previous materialization (WARN) and the "
                "contract (ERROR)."
            ),
            automation_condition=after_each,
        )
        for key in keys
    ]

    @dg.multi_asset_check(specs=specs, can_subset=True, name=name)
    def schema_change(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
        for check_key in sorted(context.selected_asset_check_keys):
            records = context.instance.fetch_materializations(check_key.asset_key, limit=2).records
            schemas = [_schema_of(r.event_log_entry) for r in records]
            current = schemas[0] if schemas else None
            previous = schemas[1] if len(schemas) > 1 else None
            contract = contracts.get(check_key.asset_key)
            yield evaluate(check_key.asset_key, previous, current, contract)

    return [schema_change]
