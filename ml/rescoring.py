"""Which customers a scoring run scores, and scoring them, as Snowpark operations.

A run scores the customers that have no score for the current model version yet (every
customer on the first run or after retraining, new customers after a customers file) and
the customers whose orders or events were loaded after ``loaded_after`` — the landed
partitions since the previous run. Each score records the landed file (partition) of its
customer's most recently loaded row as SOURCE_PARTITION.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from snowflake.snowpark import DataFrame, Window
from snowflake.snowpark import functions as F

from ml.features import FeatureInputs, build_features, checkpoint, reference_time
from ml.scoring import SCORE_COLUMNS, ChurnModel, score


@dataclass(frozen=True)
class ScoringRun:
    scores: DataFrame  # SCORE_COLUMNS, one row per customer scored in this run
    as_of: datetime | None  # the reference time of the features (newest order)
    loaded_through: datetime | None  # newest LOADED_AT of the landed inputs seen


def _landed_rows(inputs: FeatureInputs) -> DataFrame:
    def rows(df: DataFrame) -> DataFrame:
        return df.select(
            F.col("CUSTOMER_ID").alias("CUSTOMER_ID"),
            F.col("SOURCE_FILE").cast("string").alias("SOURCE_FILE"),
            F.col("LOADED_AT").alias("LOADED_AT"),
        )

    return rows(inputs.orders).union_all(rows(inputs.events))


def loaded_through(inputs: FeatureInputs) -> datetime | None:
    """The newest LOADED_AT over the landed inputs: the next run's ``loaded_after``."""
    value = _landed_rows(inputs).select(F.max("LOADED_AT").alias("M")).collect()[0]["M"]
    if value is None:
        return None
    return value.to_pydatetime() if hasattr(value, "to_pydatetime") else value


def customers_to_score(
    inputs: FeatureInputs,
    existing_scores: DataFrame | None,
    model_version: str,
    loaded_after: datetime | None,
) -> DataFrame:
    """CUSTOMER_ID and SOURCE_PARTITION of every customer this run must (re)score."""
    landed = checkpoint(_landed_rows(inputs))
    newest_first = Window.partition_by("CUSTOMER_ID").order_by(
        F.col("LOADED_AT").desc(), F.col("SOURCE_FILE").desc()
    )
    latest = checkpoint(
        landed.select(
            F.col("CUSTOMER_ID"),
            F.col("SOURCE_FILE"),
            F.col("LOADED_AT"),
            F.row_number().over(newest_first).alias("RANK"),
        )
        .filter(F.col("RANK") == 1)
        .select(
            F.col("CUSTOMER_ID").alias("CUSTOMER_ID"),
            F.col("SOURCE_FILE").alias("SOURCE_PARTITION"),
            F.col("LOADED_AT").alias("LAST_LOADED_AT"),
        )
    )
    customers = inputs.customers.select(F.col("CUSTOMER_ID")).distinct()
    candidates = customers.join(latest, on="CUSTOMER_ID", how="left")
    if existing_scores is not None:
        scored = (
            existing_scores.filter(F.col("MODEL_VERSION") == F.lit(model_version))
            .select(F.col("CUSTOMER_ID").alias("CUSTOMER_ID"), F.col("MODEL_VERSION"))
            .distinct()
        )
        candidates = candidates.join(scored, on="CUSTOMER_ID", how="left")
        due = F.col("MODEL_VERSION").is_null()
        if loaded_after is not None:
            due = due | (F.col("LAST_LOADED_AT") > F.lit(loaded_after))
        candidates = candidates.filter(due)
    return checkpoint(candidates.select(F.col("CUSTOMER_ID"), F.col("SOURCE_PARTITION")))


def score_due_customers(
    inputs: FeatureInputs,
    model: ChurnModel,
    scored_at: datetime,
    existing_scores: DataFrame | None = None,
    loaded_after: datetime | None = None,
) -> ScoringRun:
    """Score the customers :func:`customers_to_score` picks, with features as of the newest
    order (``scored_at`` when there are none)."""
    due = customers_to_score(inputs, existing_scores, model.version, loaded_after)
    as_of = reference_time(inputs.orders)
    features = build_features(replace(inputs, customers=due), as_of or scored_at)
    scored = checkpoint(score(features, model, scored_at=scored_at).drop("SOURCE_PARTITION"))
    scored = checkpoint(scored.join(due, on="CUSTOMER_ID", how="inner").select(*SCORE_COLUMNS))
    return ScoringRun(scores=scored, as_of=as_of, loaded_through=loaded_through(inputs))
