"""Code location `ml`: Snowpark features and churn scores, inside the warehouse."""

from datetime import UTC, datetime

import dagster as dg

from ml.features import build_features
from ml.scoring import DEFAULT_MODEL, score
from orchestration.automation import automation_condition_from_meta
from orchestration.automation_sensors import automation_sensor
from orchestration.pools import WAREHOUSE_POOL
from orchestration.retries import IO_RETRY
from orchestration.snowpark import SnowparkResource, snowpark_resource

MART = dg.AssetKey(["marts", "customer_order_features"])
SCORES = dg.AssetKey(["ml", "customer_scores"])


@dg.asset(
    key=SCORES,
    deps=[MART],
    group_name="ml",
    kinds={"snowpark", "python"},
    description="Churn propensity per customer, computed with Snowpark from the features mart.",
    automation_condition=automation_condition_from_meta(
        {}, asset="ml/customer_scores", source=__file__
    ),
    code_version=DEFAULT_MODEL.version,
    pool=WAREHOUSE_POOL,
    retry_policy=IO_RETRY,
)
def customer_scores(context: dg.AssetExecutionContext, snowpark: SnowparkResource):
    scored_at = datetime.now(UTC).replace(tzinfo=None)
    with snowpark.open() as wh:
        features = build_features(wh.read_table("marts", "customer_order_features"))
        scores = score(features, DEFAULT_MODEL, scored_at=scored_at)
        wh.write_table(scores, "ml", "customer_scores", mode="overwrite")
        stats = wh.read_table("ml", "customer_scores").to_pandas()
    stats.columns = [c.lower() for c in stats.columns]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(stats),
            "model_version": DEFAULT_MODEL.version,
            "score_mean": float(stats["score"].mean()) if len(stats) else 0.0,
            "score_p90": float(stats["score"].quantile(0.9)) if len(stats) else 0.0,
            "scored_at": scored_at.isoformat(),
        },
        data_version=dg.DataVersion(f"{DEFAULT_MODEL.version}:{scored_at.isoformat()}"),
    )


scores_job = dg.define_asset_job(
    "score_job", selection=[SCORES], description="Score every customer."
)

defs = dg.Definitions(
    assets=[customer_scores],
    jobs=[scores_job],
    sensors=[automation_sensor("ml")],
    executor=dg.in_process_executor,
    resources={"snowpark": snowpark_resource()},
)
