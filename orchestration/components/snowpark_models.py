"""Snowpark models declared in YAML, one folder per model (``ml/models/<name>/defs.yaml``), as
a Dagster component.

`SnowparkModelsComponent` reads every ``<models_dir>/*/defs.yaml``; each declares one
`SnowparkModelComponent` and gets, with no Python change:

- ``ml/<name>_model``: trains a versioned artifact into the model registry (``manual_only``
  unless its meta says otherwise);
- the scores asset (``outputs.scores`` as the key): rescores the customers that landed data
  touched (``on_upstream_change`` by default), with its quality checks;
- the jobs ``train_<name>_job`` and ``score_<name>_job``;
- a ``schema_change`` check on the scores table (columns and types against the previous
  scoring, WARN).

Automation takes the same ``meta.dagster`` vocabulary as every other asset kind
(orchestration/automation.py). An invalid file fails definitions load naming the file and line.
"""

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import dagster as dg
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from common.settings import PROJECT_ROOT
from common.yaml_config import YamlConfigError, line_of, read_yaml, validate
from landing.identifiers import validate_identifier, validate_table_name
from ml.features import FEATURE_COLUMNS
from orchestration.automation import MANUAL_ONLY, automation_condition_from_meta
from orchestration.checks import check_result
from orchestration.pools import WAREHOUSE_POOL
from orchestration.retries import retry_policy
from orchestration.schema_changes import schema_change_checks, schema_change_metadata
from orchestration.snowpark import SnowparkResource

MODELS_DIR = PROJECT_ROOT / "ml" / "models"
MODEL_FILE = "defs.yaml"
SCORE_CHECKS = (
    "feature_null_rates",
    "scores_in_unit_interval",
    "no_null_scores",
    "one_score_per_customer_and_version",
)

# `schema.table`, both parts safe identifiers (landing/identifiers.py)
TableName = Annotated[str, AfterValidator(validate_table_name)]
ModelName = Annotated[str, AfterValidator(lambda name: validate_identifier(name, "model name"))]


def _table(value: str) -> tuple[str, str]:
    schema, table = value.split(".")
    return schema, table


class ModelInputs(dg.Model, dg.Resolvable):
    """Warehouse tables (``schema.table``, the dbt model's layer and name) the features read."""

    customers: TableName = "marts.customer_order_features"
    orders: TableName = "marts.fct_orders"
    events: TableName = "staging.stg_landing__events"
    event_items: TableName = "staging.stg_landing__event_items"


class ModelOutputs(dg.Model, dg.Resolvable):
    scores: TableName
    history: TableName
    registry: TableName = "ml.model_registry"


# Feature names as YAML spells them (lower case); a Literal so that the schema, and with it
# the error pointing at the file and line, rejects unknown names.
FeatureName = Literal[tuple(name.lower() for name in FEATURE_COLUMNS)]  # type: ignore[valid-type]


class ModelSettings(dg.Model, dg.Resolvable):
    kind: Literal["logistic_churn"] = "logistic_churn"
    horizon_days: int = Field(30, ge=1, le=365)
    l2: float = Field(1.0, ge=0.0)
    features: list[FeatureName] | None = Field(None, min_length=1)  # type: ignore[valid-type]


class AssetAutomation(dg.Model, dg.Resolvable):
    """The asset's ``meta`` mapping; only ``meta.dagster.automation_condition[_config]`` is read."""

    meta: dict[str, Any] = Field(default_factory=dict)


class SnowparkModelComponent(dg.Component, dg.Model, dg.Resolvable):
    """One model, as one ``defs.yaml`` declares it: trained and scored with Snowpark inside the
    warehouse."""

    name: ModelName
    description: str = ""
    inputs: ModelInputs = Field(default_factory=ModelInputs)
    outputs: ModelOutputs
    settings: ModelSettings = Field(default_factory=ModelSettings, alias="model")
    training: AssetAutomation = Field(
        default_factory=lambda: AssetAutomation(
            meta={"dagster": {"automation_condition": MANUAL_ONLY}}
        )
    )
    scoring: AssetAutomation = Field(default_factory=AssetAutomation)

    @property
    def model_key(self) -> dg.AssetKey:
        return dg.AssetKey(["ml", f"{self.name}_model"])

    @property
    def scores_key(self) -> dg.AssetKey:
        return dg.AssetKey(list(_table(self.outputs.scores)))

    def training_config(self) -> Any:
        from ml.training import TrainingConfig

        features = [f.upper() for f in self.settings.features or FEATURE_COLUMNS]
        return TrainingConfig(
            name=self.name,
            horizon_days=self.settings.horizon_days,
            l2=self.settings.l2,
            features=tuple(features),
        )

    def input_tables(self) -> dict[str, tuple[str, str]]:
        return {name: _table(value) for name, value in self.inputs.model_dump().items()}

    def build_model_defs(self, source: Path) -> dg.Definitions:
        """The model's assets, jobs and checks; `source` (its defs.yaml) is named in errors."""
        deps = [dg.AssetKey(list(table)) for table in self.input_tables().values()]
        training = _training_asset(self, self.model_key, deps, str(source))
        scores = _scores_asset(self, self.scores_key, deps, str(source))
        jobs = [
            dg.define_asset_job(
                f"train_{self.name}_job",
                selection=[self.model_key],
                description=f"Train the {self.name} model and record its version in "
                f"{self.outputs.registry}.",
            ),
            dg.define_asset_job(
                f"score_{self.name}_job",
                selection=[self.scores_key],
                description=f"Score the customers that need it with the {self.name} model.",
            ),
        ]
        # columns/types against the previous scoring (WARN); a scores table has no contract
        checks = schema_change_checks([self.scores_key], {}, f"{self.name}_scores_schema_change")
        return dg.Definitions(assets=[training, scores], jobs=jobs, asset_checks=checks)

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        path = context.path / MODEL_FILE if context.path.is_dir() else context.path
        return self.build_model_defs(path)


class ModelFile(BaseModel):
    """A model folder's defs.yaml: a Dagster component declaration of one model."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["orchestration.components.snowpark_models.SnowparkModelComponent"]
    attributes: SnowparkModelComponent


def load_model(path: Path) -> SnowparkModelComponent:
    """One model's defs.yaml, validated; errors name the file, the line and the field."""
    text, data = read_yaml(path)
    if not isinstance(data, dict):
        raise YamlConfigError(f"{path}:1: a model file must be a mapping (type, attributes)")
    return validate(ModelFile, data, path, text).attributes


class SnowparkModelsComponent(dg.Component, dg.Model, dg.Resolvable):
    """Every model folder (``<models_dir>/<name>/defs.yaml``), each with its assets, jobs and
    checks; adding a folder adds a model."""

    # relative to the project root, or absolute
    models_dir: str = str(MODELS_DIR.relative_to(PROJECT_ROOT))

    def models(self) -> dict[Path, SnowparkModelComponent]:
        """The declarations by file, in folder order; names and output tables are unique."""
        folder = PROJECT_ROOT / self.models_dir
        if not folder.is_dir():
            raise YamlConfigError(f"models_dir {self.models_dir!r}: no folder {folder}")
        models = {path: load_model(path) for path in sorted(folder.glob(f"*/{MODEL_FILE}"))}
        seen: dict[str, Path] = {}
        for path, model in models.items():
            for field, unique in (
                (["name"], f"model name {model.name}"),
                (["outputs", "scores"], f"scores table {model.outputs.scores}"),
                (["outputs", "history"], f"history table {model.outputs.history}"),
            ):
                if unique in seen:
                    text = path.read_text(encoding="utf-8")
                    line = line_of(path, text, ["attributes", *field])
                    raise YamlConfigError(f"{path}:{line}: {unique} already used by {seen[unique]}")
                seen[unique] = path
        return models

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        built = [model.build_model_defs(path) for path, model in self.models().items()]
        return dg.Definitions.merge(*built) if built else dg.Definitions()


def _training_asset(
    spec: SnowparkModelComponent, key: dg.AssetKey, deps: list[dg.AssetKey], source: str
) -> dg.AssetsDefinition:
    from ml.training import code_version

    config = spec.training_config()

    @dg.asset(
        key=key,
        deps=deps,
        group_name="ml",
        kinds={"snowpark", "python"},
        description=(
            f"Trains {spec.name}: features as of {config.horizon_days} days before the newest "
            "order, labelled churned when no order followed within those days; the artifact "
            f"(coefficients, version) goes to {spec.outputs.registry}."
        ),
        automation_condition=automation_condition_from_meta(
            spec.training.meta, asset=key.to_user_string(), source=source, default=MANUAL_ONLY
        ),
        code_version=code_version(config),
        pool=WAREHOUSE_POOL,
        retry_policy=retry_policy("snowpark"),
    )
    def train_model(snowpark: SnowparkResource) -> dg.MaterializeResult:
        from ml.inputs import read_feature_inputs
        from ml.quality import input_null_rates
        from ml.registry import register
        from ml.training import train

        trained_at = datetime.now(UTC).replace(tzinfo=None)
        with snowpark.open() as wh:
            inputs = read_feature_inputs(wh, spec.input_tables())
            quality = input_null_rates(inputs)
            if not quality.passed:
                raise dg.Failure(f"{key.to_user_string()}: not trained: {quality.description}")
            try:
                trained = train(inputs, config)
            except ValueError as error:
                raise dg.Failure(f"{key.to_user_string()}: not trained: {error}") from error
            register(wh, trained, trained_at, _table(spec.outputs.registry))
        model = trained.model
        coefficients = "\n".join(
            f"| {name} | {model.weights[name]:.4f} | {model.means[name]:.4f} | "
            f"{model.scales[name]:.4f} |"
            for name in model.features
        )
        return dg.MaterializeResult(
            metadata={
                "model_version": model.version,
                "training_data_version": trained.training_data_version,
                "code_version": trained.code_version,
                "training_cutoff": trained.cutoff.isoformat(),
                "training_rows": trained.rows,
                "churn_rate": trained.churn_rate,
                **{k: float(v) for k, v in trained.metrics.items()},
                "coefficients": dg.MetadataValue.md(
                    f"intercept {model.intercept:.4f}\n\n| feature | weight | mean | scale |\n"
                    f"|---|---|---|---|\n{coefficients}"
                ),
            },
            data_version=dg.DataVersion(model.version),
        )

    return train_model


def _scores_asset(
    spec: SnowparkModelComponent, key: dg.AssetKey, deps: list[dg.AssetKey], source: str
) -> dg.AssetsDefinition:
    from ml.training import code_version

    config = spec.training_config()
    scores_table = _table(spec.outputs.scores)
    history_table = _table(spec.outputs.history)
    registry_table = _table(spec.outputs.registry)

    @dg.asset(
        key=key,
        deps=deps,
        group_name=key.path[0],  # the group is the key's prefix: the scores table's schema
        kinds={"snowpark", "python"},
        description=(
            f"{spec.description or spec.name} Scores with the current version in "
            f"{spec.outputs.registry} (priors until trained), rescoring the customers whose "
            f"rows landed since the last run; latest score per customer and model version "
            f"upserted into {spec.outputs.scores}, every scoring kept in {spec.outputs.history}."
        ),
        automation_condition=automation_condition_from_meta(
            spec.scoring.meta, asset=key.to_user_string(), source=source
        ),
        code_version=code_version(config),
        pool=WAREHOUSE_POOL,
        retry_policy=retry_policy("snowpark"),
        check_specs=[dg.AssetCheckSpec(name, asset=key) for name in SCORE_CHECKS],
    )
    def scores(context: dg.AssetExecutionContext, snowpark: SnowparkResource):
        from ml import quality
        from ml.inputs import read_feature_inputs
        from ml.registry import current_model
        from ml.rescoring import score_due_customers

        scored_at = datetime.now(UTC).replace(tzinfo=None)
        previous = context.instance.get_latest_materialization_event(key)
        previous_metadata = previous.asset_materialization.metadata if previous else {}
        with snowpark.open() as wh:
            model = current_model(wh, spec.name, registry_table) or _prior(spec)
            inputs = read_feature_inputs(wh, spec.input_tables())
            input_check = quality.input_null_rates(inputs)
            if not input_check.passed:
                # a broken upstream must not overwrite good scores: report it and write nothing
                yield dg.MaterializeResult(
                    metadata={
                        "dagster/row_count": 0,
                        "model_version": model.version,
                        "skipped": input_check.description,
                    }
                )
                yield _check(key, input_check)
                for name in SCORE_CHECKS[1:]:
                    yield check_result(
                        key,
                        name,
                        passed=False,
                        description=f"not scored: {input_check.description}",
                    )
                return
            existing = wh.read_table(*scores_table) if wh.has_table(*scores_table) else None
            loaded_after = _timestamp(previous_metadata.get("loaded_through"))
            run = score_due_customers(inputs, model, scored_at, existing, loaded_after)
            scored = run.scores
            outcomes = [
                input_check,
                quality.scores_in_unit_interval(scored),
                quality.no_null_scores(scored),
            ]
            scored_now = int(scored.count())
            if scored_now:
                wh.write_table(
                    scored, *scores_table, mode="upsert", keys=("customer_id", "model_version")
                )
                wh.write_table(scored, *history_table, mode="append")
            table = wh.read_table(*scores_table)
            outcomes.append(quality.one_score_per_customer_and_version(table))
            current = table.filter(table["MODEL_VERSION"] == model.version)
            distribution = quality.score_distribution(current)
            rows = table.count()
            columns = dg.TableSchema(
                columns=[
                    dg.TableColumn(f.name.strip('"').lower(), str(f.datatype))
                    for f in table.schema.fields
                ]
            )

        previous_mean = previous_metadata.get("score_mean")
        drift = (
            {"score_mean_change": distribution["mean"] - float(previous_mean.value)}
            if previous_mean is not None
            else {}
        )
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": int(rows),
                "dagster/column_schema": columns,
                **schema_change_metadata(context.instance, key, columns),
                "scored_this_run": scored_now,
                "model_version": model.version,
                "score_mean": distribution["mean"],
                "score_min": distribution["min"],
                "score_max": distribution["max"],
                **drift,
                "scored_at": scored_at.isoformat(),
                "features_as_of": run.as_of.isoformat() if run.as_of else "",
                "loaded_through": run.loaded_through.isoformat() if run.loaded_through else "",
            },
            data_version=dg.DataVersion(f"{model.version}:{scored_at.isoformat()}"),
        )
        for outcome in outcomes:
            yield _check(key, outcome)

    return scores


def _prior(spec: SnowparkModelComponent) -> Any:
    """Hand-set priors until the model is trained, if they fit the declared features."""
    from ml.scoring import DEFAULT_MODEL

    config = spec.training_config()
    if not set(DEFAULT_MODEL.features) <= set(config.features):
        raise dg.Failure(
            f"model {spec.name} has no trained version in {spec.outputs.registry} and its "
            f"features do not cover the priors': materialize ml/{spec.name}_model first"
        )
    return DEFAULT_MODEL


def _timestamp(value: Any) -> datetime | None:
    text = getattr(value, "value", value)
    return datetime.fromisoformat(text) if text else None


def _check(key: dg.AssetKey, outcome: Any) -> dg.AssetCheckResult:
    """An ml.quality.CheckOutcome as the asset's check result."""
    return check_result(
        key,
        outcome.name,
        passed=outcome.passed,
        description=outcome.description,
        metadata=dict(outcome.metadata),
    )
