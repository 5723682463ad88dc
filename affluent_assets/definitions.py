"""The code location: assets, checks, jobs and resources of the affluent-customer platform."""

import dagster as dg

from affluent_assets.defs.alerts.sensors import AlertWebhook, check_alerts, failure_alerts
from affluent_assets.defs.features import assets as features
from affluent_assets.defs.ingest import assets as ingest
from affluent_assets.defs.ingest.sensors import new_extract_sensor
from affluent_assets.defs.landing import assets as landing
from affluent_assets.defs.landing.rescoring import champion_rescoring_sensor
from affluent_assets.defs.landing.sensors import landing_sensor
from affluent_assets.defs.model import assets as model
from affluent_assets.defs.model.approval import model_approval_job
from affluent_assets.defs.monitoring.outcomes import (
    labelled_batch_sensor,
    model_outcomes,
    outcomes_job,
    outcomes_sensor,
)
from affluent_assets.defs.resources import default_resources
from affluent_assets.defs.scoring import assets as scoring
from affluent_assets.defs.telemetry import run_traces
from affluent_assets.lib import telemetry

# Every process that loads the code location (code server, daemon, run workers) exports, when
# an OTLP endpoint is set; off otherwise.
telemetry.setup("affluent-dagster")

MAIN_ASSETS = dg.load_assets_from_modules([ingest, features, model, scoring])

affluent_job = dg.define_asset_job(
    "affluent_job",
    selection=dg.AssetSelection.assets(*MAIN_ASSETS, landing.landed_batch_views, model_outcomes),
    description="Extract -> features -> model -> evaluation -> scores -> candidates -> segments.",
    # dagster.yaml limits runs with this tag to one at a time: the main graph never races itself.
    tags={"affluent/graph": "main"},
    # One process: steps share a warm interpreter (xgboost, mlflow imports) and DuckDB writes
    # are serialized anyway.
    executor_def=dg.in_process_executor,
)

LANDING_ASSETS = dg.load_assets_from_modules([landing])

defs = dg.Definitions(
    assets=[*MAIN_ASSETS, *LANDING_ASSETS, model_outcomes],
    asset_checks=dg.load_asset_checks_from_modules([ingest, features, model, scoring]),
    jobs=[affluent_job, landing.landing_job, model_approval_job, outcomes_job],
    sensors=[
        landing_sensor,
        champion_rescoring_sensor,
        new_extract_sensor,
        outcomes_sensor,
        labelled_batch_sensor,
        failure_alerts,
        check_alerts,
        run_traces,
    ],  # fmt: skip
    resources={**default_resources(), "alert_webhook": AlertWebhook()},
)
