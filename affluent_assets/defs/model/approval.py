"""Approving a model version that waits for a person, from the Dagster UI: the same step as
`affluent approve VERSION --by NAME`, as a job launched from the Launchpad."""

import dagster as dg
from pydantic import Field

from affluent_assets.defs.resources import MlflowModels
from affluent_assets.lib import registry


class ApprovalConfig(dg.Config):
    version: str = Field(description="The registered version number waiting for approval.")
    approved_by: str = Field(description="Who approves; recorded on the version in MLflow.")


@dg.op
def approve_model_version(
    context: dg.OpExecutionContext, config: ApprovalConfig, mlflow_models: MlflowModels
) -> str:
    """Make the version champion, recording who approved it (registry.approve); the model's
    name out."""
    approver = config.approved_by.strip()
    if not approver:
        raise dg.Failure(description="approved_by is empty: say who approves this version")
    previous = mlflow_models.describe(registry.CHAMPION_ALIAS)
    try:
        registry.approve(
            mlflow_models.tracking_uri, mlflow_models.model_name, config.version, approver
        )
    except ValueError as error:
        # The description is what the UI shows for the failed run.
        raise dg.Failure(description=str(error)) from error
    previous_version = previous.version if previous else "none"
    context.log.info(
        f"{mlflow_models.model_name} v{config.version} is the champion "
        f"(approved by {approver}; previous champion: {previous_version})"
    )
    # On the champion_model asset, so the approval shows in that asset's history.
    context.log_event(
        dg.AssetObservation(
            asset_key="champion_model",
            metadata={
                "model_name": mlflow_models.model_name,
                "version": config.version,
                "approved_by": approver,
                "previous_champion_version": previous_version,
            },
        )
    )
    return mlflow_models.model_name


@dg.job(
    description="Approve a model version that passed every promotion gate and waits for a "
    "person (champion_model run with `require_approval: true`): it becomes champion and MLflow "
    "records who approved it. Launch it from the Dagster UI Launchpad with config like\n\n"
    "    ops:\n"
    "      approve_model_version:\n"
    '        config: {version: "3", approved_by: "Jane Doe"}\n\n'
    "Same as `affluent approve 3 --by 'Jane Doe'`.",
    # dagster.yaml limits runs with this tag to one at a time: an approval never moves the
    # champion alias while the main graph is deciding promotion.
    tags={"affluent/graph": "main"},
)
def model_approval_job():
    approve_model_version()
