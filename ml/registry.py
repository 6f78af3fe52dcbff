"""The model registry: trained artifacts as rows of a warehouse table, newest is current.

One row per (model name, version), upserted, so retraining on the same data and code
records the same version once; scoring reads the most recently trained version.
"""

from __future__ import annotations

from datetime import datetime

from snowflake.snowpark import functions as F
from snowflake.snowpark.types import (
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampTimeZone,
    TimestampType,
)

from ml.scoring import ChurnModel
from ml.training import TrainedModel
from ml.warehouse_io import SnowparkWarehouse

REGISTRY_SCHEMA = StructType(
    [
        StructField("MODEL_NAME", StringType()),
        StructField("MODEL_VERSION", StringType()),
        StructField("TRAINED_AT", TimestampType(TimestampTimeZone.NTZ)),
        StructField("TRAINING_DATA_VERSION", StringType()),
        StructField("CODE_VERSION", StringType()),
        StructField("TRAINING_CUTOFF", TimestampType(TimestampTimeZone.NTZ)),
        StructField("TRAINING_ROWS", LongType()),
        StructField("CHURN_RATE", DoubleType()),
        StructField("ARTIFACT", StringType()),
    ]
)


def register(
    warehouse: SnowparkWarehouse,
    trained: TrainedModel,
    trained_at: datetime,
    table: tuple[str, str] = ("ml", "model_registry"),
) -> None:
    """Record ``trained`` as the current version of its model (``trained_at`` naive UTC)."""
    row = (
        trained.model.name,
        trained.model.version,
        trained_at,
        trained.training_data_version,
        trained.code_version,
        trained.cutoff,
        trained.rows,
        trained.churn_rate,
        trained.model.to_json(),
    )
    frame = warehouse.session.create_dataframe([row], schema=REGISTRY_SCHEMA)
    warehouse.write_table(frame, *table, mode="upsert", keys=("model_name", "model_version"))


def current_model(
    warehouse: SnowparkWarehouse,
    name: str,
    table: tuple[str, str] = ("ml", "model_registry"),
) -> ChurnModel | None:
    """The most recently trained version of model ``name``, or None if it was never trained."""
    if not warehouse.has_table(*table):
        return None
    rows = (
        warehouse.read_table(*table, columns=("MODEL_NAME", "TRAINED_AT", "ARTIFACT"))
        .filter(F.col("MODEL_NAME") == F.lit(name))
        .sort(F.col("TRAINED_AT").desc())
        .limit(1)
        .collect()
    )
    return ChurnModel.from_json(rows[0]["ARTIFACT"]) if rows else None
