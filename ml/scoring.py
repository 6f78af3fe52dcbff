"""A logistic churn-propensity model, scored with Snowpark functions.

score = 1 / (1 + exp(-(intercept + sum_i weight_i * (x_i - mean_i) / scale_i)))

Trained models come from ``ml.training``; :data:`DEFAULT_MODEL` holds hand-set priors used
until a model is trained. Their signs encode "longer since the last order -> more likely to
churn; more orders, spend, engagement and checkouts -> less likely".
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

from snowflake.snowpark import Column, DataFrame
from snowflake.snowpark import functions as F
from snowflake.snowpark.types import DoubleType, StringType, TimestampTimeZone, TimestampType

SCORE_COLUMNS: tuple[str, ...] = (
    "CUSTOMER_ID",
    "SCORE",
    "MODEL_VERSION",
    "SCORED_AT",
    "SOURCE_PARTITION",
)

# exp() of the logit is bounded so extreme inputs cannot overflow on Snowflake; at
# |z| = 50 the sigmoid is already 0 or 1 to double precision.
_LOGIT_BOUND = 50.0


@dataclass(frozen=True)
class ChurnModel:
    """Logistic model on standardised features; keys of the three maps are feature names.

    ``version`` defaults to ``"<name>-<12 hex of sha256(coefficients)>"``, so any change of
    intercept, weights, means or scales yields a new version; trained models pass the
    version derived from their training data and code (``ml.training``).
    """

    name: str
    intercept: float
    weights: Mapping[str, float]
    means: Mapping[str, float]
    scales: Mapping[str, float]
    version: str = field(default="")

    def __post_init__(self) -> None:
        keys = set(self.weights)
        if set(self.means) != keys or set(self.scales) != keys:
            raise ValueError("weights, means and scales must have the same feature names")
        values = [self.intercept, *self.weights.values(), *self.means.values()]
        if not all(math.isfinite(v) for v in [*values, *self.scales.values()]):
            raise ValueError("coefficients must be finite")
        if any(s <= 0 for s in self.scales.values()):
            raise ValueError("scales must be positive")
        for attr in ("weights", "means", "scales"):
            frozen = MappingProxyType({k.upper(): float(v) for k, v in getattr(self, attr).items()})
            object.__setattr__(self, attr, frozen)
        object.__setattr__(self, "intercept", float(self.intercept))
        if not self.version:
            object.__setattr__(self, "version", f"{self.name}-{self._coefficient_hash()}")

    def __hash__(self) -> int:
        return hash(self.version)

    @property
    def features(self) -> tuple[str, ...]:
        """Feature names the model reads, upper case, sorted."""
        return tuple(sorted(self.weights))

    def _coefficient_hash(self) -> str:
        payload = json.dumps(
            {
                "intercept": self.intercept,
                "weights": dict(self.weights),
                "means": dict(self.means),
                "scales": dict(self.scales),
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def to_json(self) -> str:
        """The artifact as stored in the model registry (keys sorted, so stable)."""
        return json.dumps(
            {
                "name": self.name,
                "version": self.version,
                "intercept": self.intercept,
                "weights": dict(self.weights),
                "means": dict(self.means),
                "scales": dict(self.scales),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> ChurnModel:
        data = json.loads(text)
        return cls(
            name=data["name"],
            intercept=data["intercept"],
            weights=data["weights"],
            means=data["means"],
            scales=data["scales"],
            version=data["version"],
        )

    def logit(self) -> Column:
        """The linear predictor as a Snowpark column expression."""
        z: Column = F.lit(self.intercept)
        for name in self.features:
            standardised = (F.col(name) - F.lit(self.means[name])) / F.lit(self.scales[name])
            z = z + F.lit(self.weights[name]) * standardised
        return z


DEFAULT_MODEL = ChurnModel(
    name="churn-logit-prior",
    intercept=-0.5,
    weights={
        "recency_days": 1.2,
        "frequency": -0.6,
        "monetary": -0.3,
        "avg_basket": -0.1,
        "engagement": -0.5,
        "checkout_rate": -0.4,
    },
    means={
        "recency_days": 60.0,
        "frequency": 3.0,
        "monetary": 150.0,
        "avg_basket": 50.0,
        "engagement": 20.0,
        "checkout_rate": 0.1,
    },
    scales={
        "recency_days": 60.0,
        "frequency": 3.0,
        "monetary": 150.0,
        "avg_basket": 40.0,
        "engagement": 20.0,
        "checkout_rate": 0.1,
    },
)


def score(
    features_df: DataFrame,
    model: ChurnModel = DEFAULT_MODEL,
    scored_at: datetime | None = None,
    source_partition: str | None = None,
) -> DataFrame:
    """Score each row of ``features_df`` (output of ``build_features``).

    Returns columns :data:`SCORE_COLUMNS`: SCORE is a double in [0, 1], SCORED_AT a
    TIMESTAMP_NTZ in UTC (``scored_at`` defaults to now; aware values are converted
    to UTC), SOURCE_PARTITION the given partition key or NULL.
    """
    available = {c.strip('"').upper() for c in features_df.columns}
    missing = sorted({"CUSTOMER_ID", *model.features} - available)
    if missing:
        raise ValueError(f"features frame lacks columns: {', '.join(missing)}")

    if scored_at is None:
        scored_at = datetime.now(UTC)
    if scored_at.tzinfo is not None:
        scored_at = scored_at.astimezone(UTC).replace(tzinfo=None)

    logit = model.logit()
    # CASE rather than LEAST/GREATEST (same result, NULL stays NULL): the local-testing
    # emulator evaluates LEAST/GREATEST row by row in Python.
    z = (
        F.when(logit > F.lit(_LOGIT_BOUND), F.lit(_LOGIT_BOUND))
        .when(logit < F.lit(-_LOGIT_BOUND), F.lit(-_LOGIT_BOUND))
        .otherwise(logit)
    )
    # 0 - z rather than -z: the local-testing emulator cannot negate some expressions.
    probability = F.lit(1.0) / (F.lit(1.0) + F.exp(F.lit(0.0) - z))
    partition = (
        F.lit(source_partition, datatype=StringType())
        if source_partition is not None
        # the emulator cannot type a NULL literal; a cast of NULL it can
        else F.lit(None).cast(StringType())
    )
    # Typed literals rather than CASTs: the same SQL types, and the emulator casts row by row.
    return features_df.select(
        F.col("customer_id"),
        probability.cast(DoubleType()).alias("score"),
        F.lit(model.version, datatype=StringType()).alias("model_version"),
        F.lit(scored_at, datatype=TimestampType(TimestampTimeZone.NTZ)).alias("scored_at"),
        partition.alias("source_partition"),
    )
