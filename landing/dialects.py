"""Where DuckDB and Snowflake differ for the landing SQL: how names are cased and quoted. The
statements themselves (landing.raw_load, landing.ledger) are portable and run on a *session*:
anything with DB-API `execute(sql, params)` and `?` placeholders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from landing.identifiers import validate_identifier


@dataclass(frozen=True)
class Dialect:
    """How one warehouse spells what the landing SQL needs."""

    name: str
    # Snowflake folds unquoted names to upper case, and dbt refers to raw tables unquoted: the
    # names we create quoted are upper case there so `raw.orders` in a model finds them.
    upper_case_names: bool
    # DDL inside a transaction rolls back with it (DuckDB); Snowflake commits it implicitly
    transactional_ddl: bool

    def fold(self, name: str) -> str:
        return name.upper() if self.upper_case_names else name.lower()

    def ident(self, name: str, what: str = "identifier") -> str:
        """A validated, case-folded, double-quoted identifier."""
        return '"' + self.fold(validate_identifier(name, what)) + '"'

    def relation(self, schema: str, table: str, catalog: str | None = None) -> str:
        name = f"{self.ident(schema, 'schema')}.{self.ident(table, 'table')}"
        return name if catalog is None else f"{self.ident(catalog, 'catalog')}.{name}"


DUCKDB = Dialect("duckdb", upper_case_names=False, transactional_ddl=True)
SNOWFLAKE = Dialect("snowflake", upper_case_names=True, transactional_ddl=False)


class Session(Protocol):
    """What the landing SQL needs of a connection: DB-API execute with `?` placeholders."""

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any: ...


def dialect_of(session: Session) -> Dialect:
    """A plain DuckDB connection is the DuckDB dialect; other sessions carry theirs."""
    return getattr(session, "dialect", DUCKDB)
