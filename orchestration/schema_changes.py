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

The first materialization that has a table is the baseline, not a change: a zone whose first
files were quarantined has no table yet, and its first successful load is not "added ...".

Type names are compared through `normalise_type` only. One type has many spellings: the zone
YAML says `varchar`, DuckDB's information_schema `VARCHAR`, dagster-dbt's column metadata (dbt's
`Column.data_type`) `character varying(256)`, Snowflake `VARCHAR(16777216)`, `NUMBER(38,0)` and
`TIMESTAMP_NTZ`.
"""

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import dagster as dg

from orchestration.checks import check_result

CHECK_NAME = "schema_change"
COLUMN_SCHEMA = "dagster/column_schema"
CONTRACT_KEY = "landfall/contract"  # JSON {column: declared type} on raw asset specs
DIFF_KEY = "landfall/schema_diff"

Warehouse = Literal["duckdb", "snowflake"]

_STRINGS = {
    "VARCHAR",
    "CHARACTER VARYING",
    "CHAR VARYING",
    "TEXT",
    "STRING",
    "CHAR",
    "CHARACTER",
    "BPCHAR",
    "NVARCHAR",
    "NVARCHAR2",
    "NCHAR",
    "NCHAR VARYING",
}
_FIXED_CHARS = {"CHAR", "CHARACTER", "NCHAR"}  # Snowflake: CHAR without a length is VARCHAR(1)
# Snowflake's VARCHAR without a length is its maximum (16 MB; 128 MB on newer accounts)
_SNOWFLAKE_UNBOUNDED_VARCHAR = {"16777216", "134217728"}
_DECIMALS = {"DECIMAL", "NUMERIC", "NUMBER"}
_TIMESTAMPS = {
    "TIMESTAMP": "TIMESTAMP",
    "DATETIME": "TIMESTAMP",
    "TIMESTAMP_NTZ": "TIMESTAMP",
    "TIMESTAMPNTZ": "TIMESTAMP",
    "TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP",
    "TIMESTAMPTZ": "TIMESTAMPTZ",
    "TIMESTAMP_TZ": "TIMESTAMPTZ",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ",
    "TIMESTAMP_LTZ": "TIMESTAMP_LTZ",  # Snowflake's session-local time zone: its own type
    "TIMESTAMPLTZ": "TIMESTAMP_LTZ",
}
_BOOLEANS = {"BOOLEAN", "BOOL", "LOGICAL"}
# DuckDB's integer and float widths are distinct types.
_DUCKDB = {
    "TINYINT": "TINYINT",
    "INT1": "TINYINT",
    "SMALLINT": "SMALLINT",
    "INT2": "SMALLINT",
    "SHORT": "SMALLINT",
    "INTEGER": "INTEGER",
    "INT": "INTEGER",
    "INT4": "INTEGER",
    "SIGNED": "INTEGER",
    "BIGINT": "BIGINT",
    "INT8": "BIGINT",
    "LONG": "BIGINT",
    "HUGEINT": "HUGEINT",
    "INT128": "HUGEINT",
    "DOUBLE": "DOUBLE",
    "FLOAT8": "DOUBLE",
    "DOUBLE PRECISION": "DOUBLE",
    "FLOAT": "FLOAT",  # 4 bytes in DuckDB
    "FLOAT4": "FLOAT",
    "REAL": "FLOAT",
}
# Snowflake: every integer spelling is NUMBER(38,0), every float spelling one 8-byte FLOAT.
_SNOWFLAKE_INTEGERS = {"INT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "BYTEINT"}
_SNOWFLAKE_FLOATS = {"FLOAT", "FLOAT4", "FLOAT8", "DOUBLE", "DOUBLE PRECISION", "REAL"}
# Types whose parameters a contract may leave open: a contract `varchar` accepts any length,
# `timestamp` any fractional precision.
_OPEN_PARAMETERS = {"VARCHAR", "TIMESTAMP", "TIMESTAMPTZ", "TIMESTAMP_LTZ"}


def _split(type_name: str) -> tuple[str, list[str]]:
    """' character varying ( 256 ) ' -> ('CHARACTER VARYING', ['256'])."""
    text = re.sub(r"\s+", " ", str(type_name).strip().upper())
    match = re.search(r"\(([^()]*)\)", text)
    if not match or text.startswith(("STRUCT", "MAP", "UNION", "ARRAY", "OBJECT", "VECTOR")):
        return text, []
    args = [a.strip() for a in match.group(1).split(",") if a.strip()]
    base = re.sub(r"\s+", " ", (text[: match.start()] + " " + text[match.end() :]).strip())
    return base, args


def _join(base: str, args: list[str]) -> str:
    return f"{base}({','.join(args)})" if args else base


def normalise_type(type_name: str, warehouse: Warehouse = "duckdb") -> str:
    """One spelling per type, by the warehouse's own rules.

    DuckDB: 'character varying(256)' / 'text' / 'string' -> 'VARCHAR' (DuckDB has no lengths);
    'int8' -> 'BIGINT', 'int4' -> 'INTEGER' (distinct widths); 'float8' / 'double precision' ->
    'DOUBLE', 'real' -> 'FLOAT'; 'numeric(18, 2)' -> 'DECIMAL(18,2)', bare 'decimal' ->
    'DECIMAL(18,3)' (DuckDB's default).
    Snowflake: 'VARCHAR(16777216)' / 'text' -> 'VARCHAR', 'varchar(10)' -> 'VARCHAR(10)'; any
    integer spelling and 'NUMBER' -> 'NUMBER(38,0)'; any float spelling -> 'DOUBLE';
    'decimal(18,2)' -> 'NUMBER(18,2)'; 'TIMESTAMP_NTZ(9)' -> 'TIMESTAMP' (9 is the default).
    Both: 'timestamp_ntz' / 'datetime' / 'timestamp without time zone' -> 'TIMESTAMP';
    'timestamptz' / 'timestamp_tz' / 'timestamp with time zone' -> 'TIMESTAMPTZ';
    'bool' -> 'BOOLEAN'. Anything else is upper-cased with its spacing normalised.
    """
    base, args = _split(type_name)
    snowflake = warehouse == "snowflake"
    if base in _STRINGS:
        if not snowflake:
            return "VARCHAR"
        if not args:
            return "VARCHAR(1)" if base in _FIXED_CHARS else "VARCHAR"
        return "VARCHAR" if args[0] in _SNOWFLAKE_UNBOUNDED_VARCHAR else _join("VARCHAR", args[:1])
    if base in _TIMESTAMPS:
        if not snowflake or args == ["9"]:
            return _TIMESTAMPS[base]
        return _join(_TIMESTAMPS[base], args[:1])
    if base in _BOOLEANS:
        return "BOOLEAN"
    if snowflake:
        if base in _SNOWFLAKE_INTEGERS:
            return "NUMBER(38,0)"
        if base in _SNOWFLAKE_FLOATS:
            return "DOUBLE"
        if base in _DECIMALS:
            precision, scale = (args + ["0"])[:2] if args else ("38", "0")
            return f"NUMBER({precision},{scale})"
        return _join(base, args)
    if base in _DECIMALS:
        precision, scale = (args + ["0"])[:2] if args else ("18", "3")
        return f"DECIMAL({precision},{scale})"
    return _join(_DUCKDB.get(base, base), args)


def types_match(declared: str, actual: str, warehouse: Warehouse = "duckdb") -> bool:
    """Whether a table's column type meets a declared one. A declaration that leaves a string
    length or timestamp precision open accepts any (`varchar` = `VARCHAR(256)`)."""
    want, have = normalise_type(declared, warehouse), normalise_type(actual, warehouse)
    if want == have:
        return True
    want_base, want_args = _split(want)
    return not want_args and want_base in _OPEN_PARAMETERS and _split(have)[0] == want_base


@dataclass(frozen=True)
class Contract:
    """Declared column types of a table, and the warehouse whose type rules apply."""

    columns: Mapping[str, str]
    warehouse: Warehouse = "duckdb"


def _columns(schema: dg.TableSchema | None, warehouse: Warehouse) -> dict[str, str]:
    if schema is None:
        return {}
    return {c.name.lower(): normalise_type(c.type, warehouse) for c in schema.columns}


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


def diff_schemas(
    previous: dg.TableSchema | None, current: dg.TableSchema, warehouse: Warehouse = "duckdb"
) -> SchemaDiff:
    """What changed from `previous` to `current`. Without a previous table (no materialization
    yet, or only ones before the table existed, e.g. every file quarantined) there is nothing to
    change from: the first table is the baseline."""
    old, new = _columns(previous, warehouse), _columns(current, warehouse)
    if not old:
        return SchemaDiff()
    return SchemaDiff(
        added={c: t for c, t in new.items() if c not in old},
        removed={c: t for c, t in old.items() if c not in new},
        retyped={c: (old[c], t) for c, t in new.items() if c in old and old[c] != t},
    )


def contract_breaks(current: dg.TableSchema, contract: Contract) -> list[str]:
    """Each declared column the table does not meet, with the contract's and the table's type."""
    columns = _columns(current, contract.warehouse)
    breaks = []
    for column, declared in contract.columns.items():
        want = normalise_type(declared, contract.warehouse)
        have = columns.get(column.lower())
        if have is None:
            breaks.append(f"column {column}: contract {want}, missing from the table")
        elif not types_match(declared, have, contract.warehouse):
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
    instance: dg.DagsterInstance,
    asset_key: dg.AssetKey,
    current: dg.TableSchema,
    warehouse: Warehouse = "duckdb",
) -> dict[str, Any]:
    """Materialization metadata: the diff against the previous materialization, if any."""
    diff = diff_schemas(previous_schema(instance, asset_key), current, warehouse)
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


def as_contract(value: "Contract | Mapping[str, str] | None") -> Contract | None:
    """A bare `{column: type}` is a DuckDB contract; a `Contract` names its warehouse."""
    if value is None or isinstance(value, Contract):
        return value
    return Contract(dict(value))


def evaluate(
    asset_key: dg.AssetKey,
    previous: dg.TableSchema | None,
    current: dg.TableSchema | None,
    contract: Contract | Mapping[str, str] | None,
) -> dg.AssetCheckResult:
    """The `schema_change` verdict for one table from its last two schemas."""
    contract = as_contract(contract)
    warehouse = contract.warehouse if contract else "duckdb"
    if current is None or not (current.columns or _columns(previous, warehouse)):
        return check_result(
            asset_key, CHECK_NAME, passed=True, description="no table yet (nothing loaded so far)"
        )
    diff = diff_schemas(previous, current, warehouse)
    breaks = contract_breaks(current, contract) if contract else []
    metadata = {"diff": dg.MetadataValue.json(diff.as_json()), "contract_breaks": breaks}
    if breaks:
        return check_result(
            asset_key,
            CHECK_NAME,
            passed=False,
            description="contract broken: " + "; ".join(breaks),
            metadata=metadata,
        )
    if diff.changed:
        description = "schema changed: " + diff.describe()
    elif not _columns(previous, warehouse):
        description = "first table: the baseline for later changes"
    else:
        description = "no change"
    return check_result(
        asset_key,
        CHECK_NAME,
        passed=not diff.changed,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata=metadata,
    )


def contract_from_spec(spec: dg.AssetSpec) -> dict[str, str] | None:
    raw = (spec.metadata or {}).get(CONTRACT_KEY)
    return json.loads(getattr(raw, "value", raw)) if raw else None


def dbt_contracts(manifest: Mapping[str, Any], translator: Any) -> dict[dg.AssetKey, Contract]:
    """Enforced dbt model contracts: asset key -> {column: data_type}, under the type rules of
    the warehouse the manifest was built for."""
    adapter = (manifest.get("metadata") or {}).get("adapter_type")
    warehouse: Warehouse = "snowflake" if adapter == "snowflake" else "duckdb"
    contracts = {}
    for props in manifest.get("nodes", {}).values():
        config = props.get("config") or {}
        if props.get("resource_type") != "model" or not (config.get("contract") or {}).get(
            "enforced"
        ):
            continue
        columns = {
            name: column["data_type"]
            for name, column in (props.get("columns") or {}).items()
            if column.get("data_type")
        }
        contracts[translator.get_asset_key(props)] = Contract(columns, warehouse)
    return contracts


def schema_change_spec(
    key: dg.AssetKey, automation_condition: dg.AutomationCondition | None = None
) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        CHECK_NAME,
        asset=key,
        description=(
            "Columns and types against the previous materialization (WARN) and the "
            "contract (ERROR)."
        ),
        automation_condition=automation_condition,
    )


def schema_change_checks(
    asset_keys: Iterable[dg.AssetKey],
    contracts: Mapping[dg.AssetKey, Contract | Mapping[str, str] | None],
    name: str,
) -> list[dg.AssetChecksDefinition]:
    """One subsettable multi-check: `schema_change` on every table asset, in the run of each
    materialization, comparing it with the one before. (Raw tables report theirs from the
    load's own step: orchestration/components/landing_zones.py.)"""
    keys = sorted(set(asset_keys), key=lambda k: k.to_user_string())
    if not keys:
        return []
    # Requested only together with its table: automation puts both in one run (and a job or a
    # UI materialization selecting the table runs its checks), never a check run of its own.
    with_its_table = dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.will_be_requested()
    ).with_label("in_the_run_of_its_table")
    specs = [schema_change_spec(key, with_its_table) for key in keys]

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
