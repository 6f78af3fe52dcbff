"""Landing zones declared in YAML (landing/zones/*.yaml), validated into `ZoneSpec`s.

An invalid zone file fails definitions load with the file, the field and the reason.
"""

from __future__ import annotations

import fnmatch
import re
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from common.yaml_config import YamlConfigError, line_of, read_yaml, validate
from landing.identifiers import validate_identifier, validate_table_name

ZONES_DIR = Path(__file__).parent / "zones"
SLING_DIR = Path(__file__).parent / "sling"

# Contract types a zone may declare; the names are valid in DuckDB and Snowflake.
# A compressed object matches the pattern of the plain file it holds: `*.csv` takes `a.csv.gz`.
# Whether (and how) it is compressed is decided by its content, never by this suffix.
COMPRESSION_SUFFIXES = (".gz", ".gzip", ".bz2", ".xz", ".zst", ".zstd")

CONTRACT_TYPES = re.compile(
    r"^(bigint|integer|double|boolean|varchar|date|timestamp|timestamptz|decimal\(\d{1,2},\d{1,2}\))$"
)


class ZoneConfigError(YamlConfigError):
    """A zone file is invalid; the message names the file, the line, the field and the reason."""


class SensorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["list", "sqs"] = "list"
    interval_seconds: int = Field(default=30, ge=1)
    max_objects_per_tick: int = Field(default=500, ge=1, le=10_000)
    # Keys only ever added in lexical order (date-prefixed, never rewritten) let the listing
    # start after the newest key seen (S3 StartAfter): a tick then costs O(new objects).
    lexical_keys: bool = False
    # per_tick: one run per tick covering every object the tick registered (a partition range);
    # per_file: one run per object (the naive mode, kept for comparison and debugging).
    # LANDFALL_LANDING_RUNS overrides it for every zone.
    runs: Literal["per_tick", "per_file"] = "per_tick"
    # sqs mode: the environment variable holding the queue URL of the S3 event notifications
    queue_url_env: str | None = None


class RetentionSpec(BaseModel):
    """How many object partitions the zone keeps in Dagster. The ledger in the warehouse is the
    permanent record of every object; Dagster's dynamic partition set only needs the recent
    ones (its guidance is at most ~100k per asset; partition status costs grow with the set).
    Partitions beyond the newest `keep_partitions` are removed once materialized (loaded or
    quarantined) by the zone's retention sensor, every `interval_seconds`; a partition whose
    run failed stays until it is handled. A removed key that
    is uploaded again is registered again and loads like a new object.

    With `forget_runs` (default), the retention sensor also deletes, in a later tick, the
    finished runs whose partitions are all removed (`DagsterInstance.delete_run`: the run and
    its event log), at most `forget_runs_per_tick` per tick. Dagster rebuilds an asset's
    partition status from its whole materialization history whenever the partition set
    changes, so without this that history, and the first UI query after each landing tick,
    grows with every object the zone ever received. What is lost: the run pages and logs of
    removed objects; the ledger keeps each object's key, ETag, state, rows, reason and times.
    A run that still holds a kept partition, or has not finished, stays."""

    model_config = ConfigDict(extra="forbid")
    keep_partitions: int = Field(default=50_000, ge=1)
    # at most this many removed in one retention tick, so a tick stays short after a backlog
    remove_per_tick: int = Field(default=10_000, ge=1)
    # how often the zone's retention sensor runs (sensors/retention.py)
    interval_seconds: int = Field(default=300, ge=30)
    # delete the runs of removed partitions (bounds Dagster's history; see above)
    forget_runs: bool = True
    # at most this many runs examined (and deleted) per tick: each delete is a few statements
    forget_runs_per_tick: int = Field(default=500, ge=1)


_LAG = re.compile(r"^(\d+)\s*([smhd])$")
_LAG_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_lag(value: str) -> timedelta:
    """'26h' -> 26 hours; units s, m, h, d."""
    match = _LAG.match(str(value).strip().lower())
    if not match:
        raise ValueError(f"invalid lag {value!r}: expected e.g. '90m', '26h' or '2d'")
    return timedelta(**{_LAG_UNITS[match.group(2)]: int(match.group(1))})


class FreshnessSpec(BaseModel):
    """How often a table must be refreshed: `freshness: {max_lag: 26h}` in a zone file, or
    `meta.dagster.freshness` on a dbt model. Becomes the asset's Dagster FreshnessPolicy."""

    model_config = ConfigDict(extra="forbid")
    max_lag: str  # e.g. "26h": older than this since the last load, the table fails freshness
    warn_after: str | None = None  # e.g. "20h": warns before it fails (shorter than max_lag)
    # No failure is notified before the first expected landing: `start` (or, if later, when
    # Dagster first evaluated the asset's freshness) plus max_lag. A date means 00:00 UTC.
    start: datetime | None = None

    @field_validator("max_lag", "warn_after")
    @classmethod
    def _lag_parses(cls, value: str | None) -> str | None:
        if value is not None and parse_lag(value) < timedelta(minutes=1):
            raise ValueError(f"{value!r} is shorter than Dagster's minimum of one minute")
        return value

    @field_validator("start", mode="before")
    @classmethod
    def _date_is_midnight_utc(cls, value: Any) -> Any:
        if isinstance(value, date) and not isinstance(value, datetime):
            return datetime.combine(value, time(0), tzinfo=UTC)
        return value

    @field_validator("start")
    @classmethod
    def _naive_is_utc(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value

    @model_validator(mode="after")
    def _warns_before_failing(self) -> FreshnessSpec:
        if self.warn_lag is not None and self.warn_lag >= self.fail_lag:
            raise ValueError(f"warn_after {self.warn_after} must be shorter than max_lag")
        return self

    @property
    def fail_lag(self) -> timedelta:
        return parse_lag(self.max_lag)

    @property
    def warn_lag(self) -> timedelta | None:
        return parse_lag(self.warn_after) if self.warn_after else None


class ZoneSpec(BaseModel):
    """One landing zone: where files land, how they load, what they must contain."""

    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    bucket: str | None = None  # default: the environment's landing bucket
    prefix: str
    pattern: str = "*"
    pattern_kind: Literal["glob", "regex"] = "glob"
    format: Literal["csv", "jsonl", "parquet"]
    loader: Literal["sling", "dlt"]
    table: str
    child_tables: list[str] = Field(default_factory=list)  # dlt's normalised child tables
    columns: dict[str, str]
    # CSV headers that are not warehouse identifiers ("Culmen Length (mm)"), each mapped to the
    # warehouse column it loads into: header in the file -> column of `columns` (or an extra).
    source_columns: dict[str, str] = Field(default_factory=dict)
    # CSV values that mean NULL besides an empty field, e.g. ["NA"]. Sling's `null_if` takes
    # one string (DuckDB's read_csv mirrors it), hence at most one.
    null_values: list[str] = Field(default_factory=list)
    max_file_bytes: int = Field(default=256 * 1024 * 1024, ge=1)
    # A file with a header (or, for JSONL, only blank lines) and no records is a valid empty
    # export: `load` records it loaded with 0 rows; `quarantine` refuses it as "no rows".
    empty_files: Literal["load", "quarantine"] = "load"
    quarantine_prefix: str = "_quarantine/"
    sensor: SensorSpec = SensorSpec()
    retention: RetentionSpec = RetentionSpec()
    freshness: FreshnessSpec | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    # Dagster asset group; by default the table's schema, the prefix of its asset keys (raw)
    group: str | None = None
    source_file: Path | None = Field(default=None, exclude=True)

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, value: str) -> str:
        return validate_identifier(value, "zone name")

    @field_validator("prefix")
    @classmethod
    def _prefix_is_folder(cls, value: str) -> str:
        if not value.endswith("/") or value.startswith("/"):
            raise ValueError("prefix must end with '/' and not start with '/'")
        return value

    @field_validator("table")
    @classmethod
    def _table_is_schema_dot_name(cls, value: str) -> str:
        return validate_table_name(value)

    @field_validator("child_tables")
    @classmethod
    def _child_tables_are_identifiers(cls, value: list[str]) -> list[str]:
        return [validate_identifier(name, "child table") for name in value]

    @field_validator("columns")
    @classmethod
    def _columns_are_typed(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("the contract needs at least one column")
        for column, type_name in value.items():
            validate_identifier(column, "column")
            if not CONTRACT_TYPES.match(str(type_name).lower()):
                raise ValueError(f"column {column}: unsupported type {type_name!r}")
        return {column: str(type_name).lower() for column, type_name in value.items()}

    @field_validator("source_columns")
    @classmethod
    def _source_columns_map_to_identifiers(cls, value: dict[str, str]) -> dict[str, str]:
        for header, column in value.items():
            if not str(header).strip() or any(c in str(header) for c in "\r\n\x00"):
                raise ValueError(f"header {header!r}: must be non-empty, on one line")
            validate_identifier(column, f"column for header {header!r}")
        targets = [c.lower() for c in value.values()]
        doubled = sorted({c for c in targets if targets.count(c) > 1})
        if doubled:
            raise ValueError(f"several headers map to the same column: {doubled}")
        return {str(header).strip(): column.lower() for header, column in value.items()}

    @field_validator("null_values")
    @classmethod
    def _one_null_string(cls, value: list[str]) -> list[str]:
        strings = sorted({str(v) for v in value if str(v) != ""})
        if len(strings) > 1:
            raise ValueError(
                f"at most one string besides the empty field (Sling's null_if takes one); "
                f"got {strings}"
            )
        return strings

    @model_validator(mode="after")
    def _csv_options_on_csv(self) -> ZoneSpec:
        if self.format != "csv" and (self.source_columns or self.null_values):
            raise ValueError("source_columns and null_values apply to CSV zones only")
        return self

    @property
    def null_value(self) -> str | None:
        """The one string (besides an empty field) that means NULL, if the zone names one."""
        return self.null_values[0] if self.null_values else None

    def warehouse_column(self, header: str) -> str:
        """The warehouse column a CSV header loads into: its mapping, else the header itself."""
        return self.source_columns.get(header.strip(), header.strip())

    def source_header(self, column: str) -> str | None:
        """The header mapped to a warehouse column, if the zone maps one."""
        return next((h for h, c in self.source_columns.items() if c == column), None)

    @model_validator(mode="after")
    def _group_is_the_key_prefix(self) -> ZoneSpec:
        self.group = validate_identifier(self.group or self.schema_name, "group")
        return self

    @model_validator(mode="after")
    def _sqs_mode_names_its_queue(self) -> ZoneSpec:
        if self.sensor.mode == "sqs" and not self.sensor.queue_url_env:
            raise ValueError("sensor.mode sqs needs sensor.queue_url_env (the variable holding it)")
        return self

    @model_validator(mode="after")
    def _pattern_compiles(self) -> ZoneSpec:
        if self.pattern_kind == "regex":
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regex: {exc}") from exc
        return self

    @property
    def schema_name(self) -> str:
        return self.table.split(".")[0]

    @property
    def table_name(self) -> str:
        return self.table.split(".")[1]

    @property
    def asset_key_path(self) -> list[str]:
        return [self.schema_name, self.table_name]

    @property
    def table_keys(self) -> list[list[str]]:
        """Asset keys of every raw table this zone writes: the main table, then children."""
        return [self.asset_key_path] + [[self.schema_name, c] for c in self.child_tables]

    @property
    def partitions_name(self) -> str:
        return f"landing_{self.name}"

    @cached_property
    def _regex(self) -> re.Pattern[str]:
        if self.pattern_kind == "regex":
            return re.compile(self.pattern)
        return re.compile(fnmatch.translate(self.pattern))

    def matches(self, key: str) -> bool:
        """Whether an object key (full key, with the prefix) belongs to this zone: its name
        matches the pattern as it is, or without a compression suffix (`a.csv.gz` for `*.csv`)."""
        if not key.startswith(self.prefix) or key.endswith("/"):
            return False
        name = key[len(self.prefix) :]
        return bool(self._regex.match(name) or self._regex.match(without_compression_suffix(name)))

    def sling_replication_path(self) -> Path:
        return SLING_DIR / f"{self.name}.yaml"


def without_compression_suffix(name: str) -> str:
    """`a.csv.gz` -> `a.csv`; a name without a compression suffix is returned unchanged."""
    lowered = name.lower()
    for suffix in COMPRESSION_SUFFIXES:
        if lowered.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def load_zone(path: Path) -> ZoneSpec:
    """One zone file, validated; errors name the file, the line, the field and the reason."""
    text, data = read_yaml(path, ZoneConfigError)
    if not isinstance(data, dict):
        raise ZoneConfigError(f"{path}:1: a zone file must be a mapping")
    zone = validate(ZoneSpec, data, path, text, error=ZoneConfigError)
    if zone.loader == "sling" and not zone.sling_replication_path().exists():
        raise ZoneConfigError(
            f"{path}:{line_of(path, text, ['loader'])}: field 'loader': "
            f"sling needs {zone.sling_replication_path()}"
        )
    return zone.model_copy(update={"source_file": path})


def load_zones(directory: Path = ZONES_DIR) -> list[ZoneSpec]:
    """All zones, sorted by name; names and tables must be unique."""
    zones = [load_zone(path) for path in sorted(directory.glob("*.yaml"))]
    seen: dict[str, Path | None] = {}
    for zone in zones:
        for unique in (f"name {zone.name}", f"table {zone.table}"):
            if unique in seen:
                raise ZoneConfigError(
                    f"{zone.source_file}: {unique} already used by {seen[unique]}"
                )
            seen[unique] = zone.source_file
    return zones
