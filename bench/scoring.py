"""Scoring throughput for 1M customers: the churn model as local Snowpark code (a real Snowpark
session on fakesnow over the DuckDB file, ml/local_snowflake.py: read the features table, score
with Snowpark expressions, write the scores table, all as the SQL Snowpark generates for
Snowflake, run by DuckDB) vs the same formula as one DuckDB SQL statement over the same table,
in the same run. The two score tables must agree to 1e-9 per customer."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import duckdb

from bench.results import record
from ml.scoring import DEFAULT_MODEL, score
from ml.warehouse_io import SnowparkWarehouse

CUSTOMERS = 1_000_000
SCORED_AT = "2024-06-01 12:00:00"


def write_features(path: Path, customers: int) -> None:
    """A deterministic features table (the prior's six features) for ``customers`` rows."""
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA features")
        con.execute(
            """
            CREATE TABLE features.churn AS
            SELECT i AS customer_id,
                   (hash(i, 1) % 366)::DOUBLE AS recency_days,
                   (hash(i, 2) % 12)::DOUBLE AS frequency,
                   (hash(i, 3) % 100000)::DOUBLE / 100 AS monetary,
                   (hash(i, 4) % 20000)::DOUBLE / 100 AS avg_basket,
                   (hash(i, 5) % 80)::DOUBLE AS engagement,
                   (hash(i, 6) % 1000)::DOUBLE / 1000 AS checkout_rate
            FROM range(?) AS t(i)
            """,
            [customers],
        )


def _duckdb_sql(path: Path) -> None:
    """The model as SQL: the same clamp and sigmoid as ml.scoring.score."""
    model = DEFAULT_MODEL
    terms = " + ".join(
        f"{model.weights[f]!r} * ({f.lower()} - {model.means[f]!r}) / {model.scales[f]!r}"
        for f in model.features
    )
    with duckdb.connect(str(path)) as con:
        con.execute(
            f"""
            CREATE OR REPLACE TABLE ml.customer_scores_sql AS
            SELECT customer_id,
                   1.0 / (1.0 + exp(-least(greatest({model.intercept!r} + {terms}, -50), 50)))
                       AS score,
                   ? AS model_version,
                   TIMESTAMP '{SCORED_AT}' AS scored_at,
                   NULL::VARCHAR AS source_partition
            FROM features.churn
            """,
            [model.version],
        )


def measure(customers: int = CUSTOMERS) -> tuple[float, float, float]:
    """(our seconds, plain SQL seconds, worst score difference) for ``customers`` rows.

    Ours is timed from reading the features to the committed scores table; starting the
    session (once per step, a fraction of a second) is outside, as the SQL's connect is.
    """
    with tempfile.TemporaryDirectory(prefix="landfall-bench-scoring-") as tmp:
        path = Path(tmp) / "warehouse.duckdb"
        write_features(path, customers)
        with duckdb.connect(str(path)) as con:
            con.execute("CREATE SCHEMA ml")

        started = time.perf_counter()
        _duckdb_sql(path)
        baseline = time.perf_counter() - started

        with SnowparkWarehouse.local(path) as warehouse:
            started = time.perf_counter()
            features = warehouse.read_table("features", "churn")
            scores = score(features, DEFAULT_MODEL, scored_at=_scored_at())
            warehouse.write_table(scores, "ml", "customer_scores")
            ours = time.perf_counter() - started

        with duckdb.connect(str(path), read_only=True) as con:
            rows, worst = con.execute(
                "SELECT count(*), max(abs(s.score - q.score)) FROM ml.customer_scores s "
                "JOIN ml.customer_scores_sql q USING (customer_id)"
            ).fetchone()
        if rows != customers:
            raise AssertionError(f"{rows} of {customers} customers scored by both routes")
        if not worst < 1e-9:
            raise AssertionError(f"Snowpark and SQL scores differ by {worst}")
    return ours, baseline, worst


def run(customers: int = CUSTOMERS) -> None:
    print(f"scoring {customers:,} customers")
    ours, baseline, worst = measure(customers)
    ours_rps, baseline_rps = customers / ours, customers / baseline
    ratio = ours_rps / baseline_rps
    print(
        f"  local Snowpark (fakesnow over DuckDB) {ours:.2f} s ({ours_rps:,.0f} rows/s), "
        f"DuckDB SQL {baseline:.2f} s ({baseline_rps:,.0f} rows/s), ratio {ratio:.3f}, "
        f"scores equal within {worst:.1e}"
    )
    record(
        "scoring 1M customers",
        f"{ours_rps:,.0f} rows/s",
        f"{baseline_rps:,.0f} rows/s",
        ratio,
        ">= 0.2x plain DuckDB SQL, scores equal to 1e-9",
    )


def _scored_at():  # noqa: ANN202 - datetime
    from datetime import datetime

    return datetime.fromisoformat(SCORED_AT)
