"""Code location `ml`: the Snowpark models declared in ml/models/*/defs.yaml (training and
scoring assets with their checks), plus this location's sensors and the Snowpark resource."""

import dagster as dg

from orchestration.automation_sensors import automation_sensors
from orchestration.components.reactions import reaction_sensors
from orchestration.components.snowpark_models import load_snowpark_models
from orchestration.schema_changes import schema_change_checks
from orchestration.snowpark import snowpark_resource

SCORES = dg.AssetKey(["ml", "customer_scores"])
CHURN_MODEL = dg.AssetKey(["ml", "churn_model"])


def _model_assets() -> list[dg.AssetsDefinition]:
    # Only the assets stay at module scope: the workspace loader refuses a module holding two
    # Definitions objects.
    return [a for a in load_snowpark_models().assets or [] if isinstance(a, dg.AssetsDefinition)]


model_assets = _model_assets()
# The churn model's two assets, for tests and jobs that name them.
customer_scores = next(a for a in model_assets if SCORES in a.keys)
churn_model = next(a for a in model_assets if CHURN_MODEL in a.keys)

scores_job = dg.define_asset_job(
    "score_job", selection=[SCORES], description="Score the customers that need it."
)
train_job = dg.define_asset_job(
    "train_churn_job",
    selection=[CHURN_MODEL],
    description="Train the churn model and record its version in the registry.",
)

# columns/types against the previous scoring (WARN); the scores table has no contract
scores_checks = schema_change_checks([SCORES], {}, "scores_schema_change")

defs = dg.Definitions(
    assets=model_assets,
    asset_checks=scores_checks,
    jobs=[scores_job, train_job],
    sensors=[*automation_sensors("ml", model_assets, scores_checks), *reaction_sensors("ml")],
    executor=dg.in_process_executor,
    resources={"snowpark": snowpark_resource()},
)
