"""Training the churn model from history, deterministically, into a versioned artifact.

The label is built from history: features are computed as of a cutoff ``horizon_days``
before the newest order, and a customer is labelled churned (1) when they placed no
counted order in the ``horizon_days`` after the cutoff. Only customers active before the
cutoff (an order or an event) are labelled.

Features and labels are aggregated in the warehouse (Snowpark); only the per-customer
training matrix comes back to fit an L2-regularised logistic regression by Newton's
method. Rows are sorted by customer and coefficients rounded, so the same data gives the
same coefficients, and the version is a hash of the training data and of this code:
same data and code -> same version; new data or new code -> a new version.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from snowflake.snowpark import DataFrame
from snowflake.snowpark import functions as F

from ml import features as features_module
from ml import scoring as scoring_module
from ml.features import FEATURE_COLUMNS, FeatureInputs, build_features, reference_time
from ml.scoring import ChurnModel

LABEL = "CHURNED"
_DECIMALS = 10  # coefficients are stored rounded: stable across BLAS summation orders


@dataclass(frozen=True)
class TrainingConfig:
    """What a model declaration sets: its name, label horizon, penalty and features."""

    name: str = "churn"
    horizon_days: int = 30
    l2: float = 1.0
    features: tuple[str, ...] = FEATURE_COLUMNS
    max_iterations: int = 100

    def __post_init__(self) -> None:
        unknown = sorted(set(self.features) - set(FEATURE_COLUMNS))
        if unknown:
            raise ValueError(f"unknown features {unknown}; known: {list(FEATURE_COLUMNS)}")
        if not self.features:
            raise ValueError("a model needs at least one feature")
        if self.horizon_days < 1:
            raise ValueError("horizon_days must be at least 1")
        if self.l2 < 0:
            raise ValueError("l2 must be >= 0")


@dataclass(frozen=True)
class TrainedModel:
    """The artifact: the model plus what it was trained on (recorded in the registry)."""

    model: ChurnModel
    training_data_version: str
    code_version: str
    cutoff: datetime
    rows: int
    churn_rate: float
    metrics: dict[str, float] = field(default_factory=dict)


def code_version(config: TrainingConfig) -> str:
    """Hash of the model code (features, training, scoring) and the declaration."""
    digest = hashlib.sha256()
    for module in (features_module, scoring_module):
        digest.update(inspect.getsource(module).encode())
    digest.update(inspect.getsource(inspect.getmodule(code_version)).encode())  # this module
    digest.update(json.dumps(config.__dict__, sort_keys=True, default=list).encode())
    return digest.hexdigest()[:16]


def training_frame(
    inputs: FeatureInputs, config: TrainingConfig
) -> tuple[DataFrame, datetime] | None:
    """Features as of the cutoff joined to the label; None when there are no orders."""
    newest = reference_time(inputs.orders)
    if newest is None:
        return None
    cutoff = newest - timedelta(days=config.horizon_days)
    features = build_features(inputs, cutoff)

    order_ts = features_module.utc_ntz(inputs.orders, "ORDER_TS")
    ordered_after = (
        F.coalesce(F.col("IS_COUNTED"), F.lit(False))
        & (order_ts > F.lit(cutoff))
        & (order_ts <= F.lit(newest))
    )
    future = (
        inputs.orders.select(
            F.col("CUSTOMER_ID").alias("CUSTOMER_ID"),
            F.iff(ordered_after, F.lit(1.0), F.lit(0.0)).alias("FUTURE_ORDERS"),
        )
        .group_by("CUSTOMER_ID")
        .agg(F.sum(F.col("FUTURE_ORDERS")).alias("FUTURE_ORDERS"))
    )
    labelled = features.join(future, on="CUSTOMER_ID", how="left").select(
        *[F.col(c) for c in features.columns],
        F.iff(
            F.coalesce(F.col("FUTURE_ORDERS"), F.lit(0.0)) > F.lit(0.0), F.lit(0.0), F.lit(1.0)
        ).alias(LABEL),
    )
    active = (F.col("FREQUENCY") > F.lit(0.0)) | (F.col("ENGAGEMENT") > F.lit(0.0))
    return labelled.filter(active), cutoff


def _fingerprint(matrix: pd.DataFrame) -> str:
    canonical = matrix.to_csv(index=False, float_format=f"%.{_DECIMALS}g", lineterminator="\n")
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, max_iterations: int) -> np.ndarray:
    """Newton's method on the L2-penalised log-likelihood (intercept not penalised)."""
    n, k = x.shape
    design = np.hstack([np.ones((n, 1)), x])
    penalty = np.eye(k + 1) * l2
    penalty[0, 0] = 0.0
    beta = np.zeros(k + 1)
    for _ in range(max_iterations):
        z = np.clip(design @ beta, -50.0, 50.0)
        p = 1.0 / (1.0 + np.exp(-z))
        gradient = design.T @ (y - p) - penalty @ beta
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hessian + np.eye(k + 1) * 1e-9, gradient)
        beta = beta + step
        if float(np.max(np.abs(step))) < 1e-10:
            break
    return beta


def train(inputs: FeatureInputs, config: TrainingConfig) -> TrainedModel:
    """Train on ``inputs``; raises ``ValueError`` saying why when the data cannot train."""
    built = training_frame(inputs, config)
    if built is None:
        raise ValueError("no orders in the warehouse: nothing to build labels from")
    frame, cutoff = built
    columns = ["CUSTOMER_ID", *config.features, LABEL]
    matrix = frame.select(*columns).to_pandas()
    matrix.columns = [c.strip('"').upper() for c in matrix.columns]
    matrix = matrix.sort_values("CUSTOMER_ID", kind="stable").reset_index(drop=True)
    if len(matrix) < 2:
        raise ValueError(f"{len(matrix)} active customer(s) before {cutoff}: too few to train")
    y = matrix[LABEL].to_numpy(dtype=float)
    if y.min() == y.max():
        kind = "churned" if y[0] == 1.0 else "retained"
        raise ValueError(
            f"every one of the {len(y)} training customers {kind} after {cutoff}: "
            "the labels need both churned and retained customers"
        )
    raw = matrix[list(config.features)].to_numpy(dtype=float)
    means = raw.mean(axis=0)
    scales = raw.std(axis=0)
    scales = np.where(scales > 1e-12, scales, 1.0)  # a constant feature gets weight ~0
    beta = _fit_logistic((raw - means) / scales, y, config.l2, config.max_iterations)

    data_version = _fingerprint(matrix)
    code = code_version(config)
    version_hash = hashlib.sha256(f"{data_version}:{code}".encode()).hexdigest()[:12]

    def rounded(values: np.ndarray) -> dict[str, float]:
        return {
            name: round(float(v), _DECIMALS)
            for name, v in zip(config.features, values, strict=True)
        }

    model = ChurnModel(
        name=config.name,
        intercept=round(float(beta[0]), _DECIMALS),
        weights=rounded(beta[1:]),
        means=rounded(means),
        scales=rounded(scales),
        version=f"{config.name}-{version_hash}",
    )
    z = np.clip(beta[0] + ((raw - means) / scales) @ beta[1:], -50.0, 50.0)
    p = 1.0 / (1.0 + np.exp(-z))
    log_loss = -float(np.mean(y * np.log(p + 1e-15) + (1 - y) * np.log(1 - p + 1e-15)))
    return TrainedModel(
        model=model,
        training_data_version=data_version,
        code_version=code,
        cutoff=cutoff,
        rows=len(matrix),
        churn_rate=float(y.mean()),
        metrics={
            "log_loss": round(log_loss, 6),
            "accuracy": round(float(np.mean((p >= 0.5) == (y == 1.0))), 6),
            "baseline_log_loss": round(_entropy(float(y.mean())), 6),
        },
    )


def _entropy(rate: float) -> float:
    return -(rate * math.log(rate) + (1 - rate) * math.log(1 - rate))
