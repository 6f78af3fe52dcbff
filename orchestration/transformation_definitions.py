"""How the `transformation` location's Definitions are built from a dbt project (raw -> staging
-> intermediate -> marts). `orchestration.transformation` builds them for the code server;
benchmarks build them over generated projects without loading this repository's."""

import json

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from orchestration.automation_sensors import automation_sensors
from orchestration.components.reactions import reaction_sensors
from orchestration.dbt_project import dbt_project, dbt_resource, manifest_path
from orchestration.freshness import dbt_freshness, freshness_notifications, with_freshness_policies
from orchestration.pools import WAREHOUSE_POOL
from orchestration.retries import retry_policy
from orchestration.schema_changes import dbt_contracts, schema_change_checks, with_schema_changes
from orchestration.translation import LandfallDbtTranslator


def _release_duckdb_adapter() -> None:
    """Row counts are fetched through dbt-duckdb in this process, and dbt-duckdb keeps the
    database open until the process exits. The warehouse has one writer: let go now."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # the Snowflake target
        return
    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
            DuckDBConnectionManager._ENV = None


def indirect_selection_args(
    context: dg.AssetExecutionContext, dbt_models: dg.AssetsDefinition
) -> list[str]:
    """`--indirect-selection cautious` for this one dbt invocation (not the process environment).

    Automation builds subsets (only what changed). A test spanning two models, such as orders ->
    customers relationships, then runs only when both are built, so a subset never tests against
    a model that is not there yet. Left off when the run leaves out some checks of the models it
    builds: dagster-dbt then names the tests to run and turns indirect selection off (`empty`,
    through the environment of the dbt process), which a command-line flag would override.
    """
    selected = context.selected_asset_keys
    left_out = {key for key in dbt_models.check_keys if key.asset_key in selected} - set(
        context.selected_asset_check_keys
    )
    return [] if left_out else ["--indirect-selection", "cautious"]


def build_definitions(
    project: DbtProject | None = None, translator: DagsterDbtTranslator | None = None
) -> dg.Definitions:
    """The location's definitions; `project` and `translator` are swapped only by benchmarks."""
    project = project or dbt_project()
    translator = translator or LandfallDbtTranslator()
    # The given project's manifest, read now: dagster-dbt caches a manifest read by path for
    # the life of the process, which would serve a model deleted since.
    manifest = json.loads(manifest_path(project).read_text())

    @dbt_assets(
        manifest=manifest,
        project=project,
        dagster_dbt_translator=translator,
        pool=WAREHOUSE_POOL,
        retry_policy=retry_policy("dbt"),
    )
    def landfall_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        build = ["build", *indirect_selection_args(context, landfall_dbt_models)]
        try:
            yield from with_schema_changes(
                context.instance,
                dbt.cli(build, context=context)
                .stream()
                .fetch_row_counts()
                .fetch_column_metadata(),  # column schema (and lineage) on every model
                context.selected_asset_keys,
            )
        finally:
            _release_duckdb_adapter()

    # a FreshnessPolicy on each model whose `meta.dagster.freshness` declares one
    freshness = dbt_freshness(manifest, translator)
    [landfall_dbt_models] = with_freshness_policies([landfall_dbt_models], freshness)

    transform_job = dg.define_asset_job(
        "transform_job",
        selection=dg.AssetSelection.assets(landfall_dbt_models),
        description="Build every dbt model and run its tests.",
    )
    # columns/types against the previous build (WARN) and enforced dbt contracts (ERROR)
    schema_checks = schema_change_checks(
        landfall_dbt_models.keys,
        dbt_contracts(manifest, LandfallDbtTranslator()),
        "dbt_schema_change",
    )
    return dg.Definitions(
        assets=[landfall_dbt_models],
        asset_checks=schema_checks,
        jobs=[transform_job],
        sensors=[
            *automation_sensors("transformation", [landfall_dbt_models], schema_checks),
            *reaction_sensors("transformation"),
            *freshness_notifications("transformation", freshness),
        ],
        executor=dg.in_process_executor,
        resources={"dbt": dbt_resource(project)},
    )
