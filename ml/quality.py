"""Quality checks and drift figures for scores, as Snowpark DataFrame operations."""

from __future__ import annotations

from dataclasses import dataclass, field

from snowflake.snowpark import DataFrame
from snowflake.snowpark import functions as F

from ml.features import INPUT_COLUMNS, FeatureInputs

MAX_INPUT_NULL_RATE = 0.95  # a feature input (almost) entirely null is a broken upstream


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    description: str
    metadata: dict[str, float | int | str] = field(default_factory=dict)


def input_null_rates(inputs: FeatureInputs) -> CheckOutcome:
    """Null rate of every feature input column; fails naming the columns over the bound.

    No customers fails; an input without rows (no clickstream landed yet) is skipped.
    """
    rates: dict[str, float] = {}
    for name, columns in INPUT_COLUMNS.items():
        frame: DataFrame = getattr(inputs, name)
        row = frame.select(
            F.count(F.lit(1)).alias("ROWS"), *[F.count(F.col(c)).alias(c) for c in columns]
        ).collect()[0]
        total = int(row["ROWS"])
        if total == 0:
            if name == "customers":
                return CheckOutcome("feature_null_rates", False, "the customers input has no rows")
            continue
        for column in columns:
            rates[f"{name}.{column.lower()}"] = round(1 - float(row[column]) / total, 4)
    bad = sorted(c for c, rate in rates.items() if rate > MAX_INPUT_NULL_RATE)
    description = (
        f"null rate above {MAX_INPUT_NULL_RATE:.0%} in {', '.join(bad)}"
        if bad
        else f"every feature input at most {MAX_INPUT_NULL_RATE:.0%} null"
    )
    return CheckOutcome("feature_null_rates", not bad, description, rates)


def scores_in_unit_interval(scores: DataFrame) -> CheckOutcome:
    outside = int(scores.filter((F.col("SCORE") < 0) | (F.col("SCORE") > 1)).count())
    return CheckOutcome(
        "scores_in_unit_interval",
        outside == 0,
        f"{outside} score(s) outside [0, 1]",
        {"outside": outside},
    )


def no_null_scores(scores: DataFrame) -> CheckOutcome:
    nulls = int(scores.filter(F.col("SCORE").is_null()).count())
    return CheckOutcome("no_null_scores", nulls == 0, f"{nulls} null score(s)", {"nulls": nulls})


def one_score_per_customer_and_version(table: DataFrame) -> CheckOutcome:
    duplicated = int(
        table.group_by("CUSTOMER_ID", "MODEL_VERSION")
        .agg(F.count(F.lit(1)).alias("N"))
        .filter(F.col("N") > 1)
        .count()
    )
    return CheckOutcome(
        "one_score_per_customer_and_version",
        duplicated == 0,
        f"{duplicated} (customer, model version) pair(s) with more than one score",
        {"duplicated_pairs": duplicated},
    )


def score_distribution(scores: DataFrame) -> dict[str, float]:
    """Mean and deciles of this scoring, for drift against the previous run."""
    row = scores.select(
        F.avg("SCORE").alias("MEAN"),
        F.min("SCORE").alias("MIN"),
        F.max("SCORE").alias("MAX"),
        F.count("SCORE").alias("N"),
    ).collect()[0]
    return {
        "mean": float(row["MEAN"] or 0.0),
        "min": float(row["MIN"] or 0.0),
        "max": float(row["MAX"] or 0.0),
        "scored": int(row["N"]),
    }
