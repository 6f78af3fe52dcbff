"""Code location `ml`: the Snowpark models declared in ml/models/*/defs.yaml (training and
scoring assets with their checks), plus this location's sensors and the Snowpark resource."""

import dagster as dg

from orchestration.automation_sensors import automation_sensor
from orchestration.components.snowpark_models import load_snowpark_models
from orchestration.snowpark import snowpark_resource
from orchestration.components.reactions import reaction_sensors

SCORES = dg.AssetKey(["ml", "customer_scores"])
CHURN_MODEL = dg.AssetKey(["ml", "churn_model"])

models = load_snowpark_models()


def _asset(key: dg.AssetKey) -> dg.AssetsDefinition:
    return next(
        a for a in models.assets or [] if isinstance(a, dg.AssetsDefinition) and key in a.keys
    )


# The churn model's two assets, for tests and jobs that name them.
customer_scores = _asset(SCORES)
churn_model = _asset(CHURN_MODEL)

scores_job = dg.define_asset_job(
    "score_job", selection=[SCORES], description="Score the customers that need it."
)
train_job = dg.define_asset_job(
    "train_churn_job",
    selection=[CHURN_MODEL],
    description="Train the churn model and record its version in the registry.",
)

defs = dg.Definitions.merge(
    models,
    dg.Definitions(
        jobs=[scores_job, train_job],
        sensors=[automation_sensor("ml"), *reaction_sensors("ml")],
        executor=dg.in_process_executor,
        resources={"snowpark": snowpark_resource()},
    ),
)
