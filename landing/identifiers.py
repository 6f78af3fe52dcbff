"""Identifiers that reach SQL: validated against a strict pattern, then quoted.

The one identifier rule of the platform: zone files, model declarations, reactions and the ML
warehouse code all validate names here.
"""

from __future__ import annotations

import re

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class UnsafeIdentifierError(ValueError):
    """A name from YAML or a file would not be a safe SQL identifier."""


def validate_identifier(name: str, what: str = "identifier") -> str:
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise UnsafeIdentifierError(
            f"{what} {name!r} is not a safe identifier (letters, digits, _; not starting with a "
            "digit; at most 63 characters)"
        )
    return name


def validate_table_name(value: str, what: str = "table") -> str:
    """`<schema>.<table>`, both parts safe identifiers; returns `value` unchanged."""
    parts = value.split(".") if isinstance(value, str) else []
    if len(parts) != 2:
        raise UnsafeIdentifierError(f"{what} {value!r} must be '<schema>.<table>'")
    for part in parts:
        validate_identifier(part, f"{what} part")
    return value


def quote_identifier(name: str, what: str = "identifier") -> str:
    """Validated and double-quoted, valid in DuckDB and Snowflake alike."""
    return '"' + validate_identifier(name, what) + '"'


def qualified(schema: str, table: str) -> str:
    return f"{quote_identifier(schema, 'schema')}.{quote_identifier(table, 'table')}"


def quote_literal(value: str) -> str:
    """A SQL string literal; used only where a parameter cannot be bound (DDL)."""
    return "'" + value.replace("'", "''") + "'"
