"""Where the feature inputs live in the warehouse, and reading them as Snowpark frames."""

from __future__ import annotations

from collections.abc import Mapping

from ml.features import INPUT_COLUMNS, FeatureInputs
from ml.warehouse_io import SnowparkWarehouse

# Columns read beyond the feature inputs: which landed file a row came from and when, so
# scoring can tell which customers a newly landed partition touched.
LINEAGE_COLUMNS: tuple[str, ...] = ("SOURCE_FILE", "LOADED_AT")

DEFAULT_INPUT_TABLES: dict[str, tuple[str, str]] = {
    "customers": ("marts", "customer_order_features"),
    "orders": ("marts", "fct_orders"),
    "events": ("staging", "stg_landing__events"),
    "event_items": ("staging", "stg_landing__event_items"),
}
# Inputs whose rows carry LINEAGE_COLUMNS.
LANDED_INPUTS: tuple[str, ...] = ("orders", "events")


def read_feature_inputs(
    warehouse: SnowparkWarehouse,
    tables: Mapping[str, tuple[str, str]] = DEFAULT_INPUT_TABLES,
) -> FeatureInputs:
    """Read the four inputs (only the columns used) from ``tables``."""
    unknown = sorted(set(tables) ^ set(INPUT_COLUMNS))
    if unknown:
        raise ValueError(f"feature inputs must be exactly {sorted(INPUT_COLUMNS)}: {unknown}")
    frames = {}
    for name, (schema, table) in tables.items():
        columns = INPUT_COLUMNS[name] + (LINEAGE_COLUMNS if name in LANDED_INPUTS else ())
        frames[name] = warehouse.read_table(schema, table, columns=columns)
    return FeatureInputs(**frames)
