"""Code location `ml`: Snowpark features and churn scores, inside the warehouse."""

from datetime import UTC, datetime

import dagster as dg

from ml import quality
from ml.features import build_features
from ml.scoring import DEFAULT_MODEL, score
from orchestration.automation import automation_condition_from_meta
from orchestration.automation_sensors import automation_sensor
from orchestration.components.reactions import reaction_sensors
from orchestration.pools import WAREHOUSE_POOL
from orchestration.retries import retry_policy
from orchestration.schema_changes import schema_change_checks, schema_change_metadata
from orchestration.snowpark import SnowparkResource, snowpark_resource

MART = dg.AssetKey(["marts", "customer_order_features"])
SCORES = dg.AssetKey(["ml", "customer_scores"])


CHECKS = (
    "feature_null_rates",
    "scores_in_unit_interval",
    "no_null_scores",
    "one_score_per_customer_and_version",
)


@dg.asset(
    key=SCORES,
    deps=[MART],
    group_name="ml",
    kinds={"snowpark", "python"},
    description=(
        "Churn propensity per customer, computed with Snowpark from the features mart: the "
        "latest score per customer and model version (upserted), every scoring kept in "
        "ml.customer_score_history."
    ),
    automation_condition=automation_condition_from_meta(
        {}, asset="ml/customer_scores", source=__file__
    ),
    code_version=DEFAULT_MODEL.version,
    pool=WAREHOUSE_POOL,
    retry_policy=retry_policy("snowpark"),
    check_specs=[dg.AssetCheckSpec(name, asset=SCORES) for name in CHECKS],
)
def customer_scores(context: dg.AssetExecutionContext, snowpark: SnowparkResource):
    scored_at = datetime.now(UTC).replace(tzinfo=None)
    with snowpark.open() as wh:
        marts = wh.read_table("marts", "customer_order_features")
        inputs = quality.input_null_rates(marts)
        if not inputs.passed:
            # a broken upstream must not overwrite good scores: report it and write nothing
            yield dg.MaterializeResult(
                metadata={
                    "dagster/row_count": 0,
                    "model_version": DEFAULT_MODEL.version,
                    "skipped": inputs.description,
                }
            )
            yield _check(inputs)
            for name in CHECKS[1:]:
                yield dg.AssetCheckResult(
                    asset_key=SCORES,
                    check_name=name,
                    passed=False,
                    description=f"not scored: {inputs.description}",
                )
            return
        scores = score(build_features(marts), DEFAULT_MODEL, scored_at=scored_at)
        scores = scores.cache_result()
        outcomes = [
            inputs,
            quality.scores_in_unit_interval(scores),
            quality.no_null_scores(scores),
        ]
        distribution = quality.score_distribution(scores)
        wh.write_table(
            scores, "ml", "customer_scores", mode="upsert", keys=("customer_id", "model_version")
        )
        wh.write_table(scores, "ml", "customer_score_history", mode="append")
        table = wh.read_table("ml", "customer_scores")
        outcomes.append(quality.one_score_per_customer_and_version(table))
        rows = table.count()
        columns = dg.TableSchema(
            columns=[
                dg.TableColumn(f.name.strip('"').lower(), str(f.datatype))
                for f in table.schema.fields
            ]
        )

    previous = context.instance.get_latest_materialization_event(SCORES)
    previous_mean = previous.asset_materialization.metadata.get("score_mean") if previous else None
    drift = (
        {"score_mean_change": distribution["mean"] - float(previous_mean.value)}
        if previous_mean is not None
        else {}
    )
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": int(rows),
            "dagster/column_schema": columns,
            **schema_change_metadata(context.instance, SCORES, columns),
            "scored_this_run": distribution["scored"],
            "model_version": DEFAULT_MODEL.version,
            "score_mean": distribution["mean"],
            "score_min": distribution["min"],
            "score_max": distribution["max"],
            **drift,
            "scored_at": scored_at.isoformat(),
        },
        data_version=dg.DataVersion(f"{DEFAULT_MODEL.version}:{scored_at.isoformat()}"),
    )
    for outcome in outcomes:
        yield _check(outcome)


def _check(outcome: quality.CheckOutcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=SCORES,
        check_name=outcome.name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=outcome.description,
        metadata=dict(outcome.metadata),
    )


scores_job = dg.define_asset_job(
    "score_job", selection=[SCORES], description="Score every customer."
)

defs = dg.Definitions(
    assets=[customer_scores],
    # columns/types against the previous scoring (WARN); the scores table has no contract
    asset_checks=schema_change_checks([SCORES], {}, "scores_schema_change"),
    jobs=[scores_job],
    sensors=[automation_sensor("ml"), *reaction_sensors("ml")],
    executor=dg.in_process_executor,
    resources={"snowpark": snowpark_resource()},
)
