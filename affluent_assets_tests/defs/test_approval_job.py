"""model_approval_job: approving a version that waits for a person, from the Dagster UI."""

import shutil
from dataclasses import replace

import dagster as dg
import pytest
from mlflow.tracking import MlflowClient

from affluent_assets.defs.model.approval import model_approval_job
from affluent_assets.lib import registry
from affluent_assets_tests.defs.conftest import MODEL_NAME, ModelStore, register_tiny_model


@pytest.fixture(scope="module")
def waiting_template(tmp_path_factory) -> ModelStore:
    """v1 champion, v2 passed the gates and waits for approval (as champion_model leaves it
    with `require_approval`). Trained once per module: each test approves in a copy."""
    root = tmp_path_factory.mktemp("approval")
    champion = register_tiny_model(root)
    challenger = register_tiny_model(root, champion.tracking_uri)
    # register_tiny_model promotes; the gate with require_approval only tags the version.
    registry.set_alias(champion.tracking_uri, MODEL_NAME, champion.model.version)
    registry.mark_pending_approval(champion.tracking_uri, MODEL_NAME, challenger.model.version)
    return champion


@pytest.fixture
def store(waiting_template, tmp_path) -> ModelStore:
    """A private copy of the registry (artifacts stay shared, approval never writes them)."""
    shutil.copy(waiting_template.tracking_uri.removeprefix("sqlite:///"), tmp_path / "mlflow.db")
    return replace(waiting_template, tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")


def approve(store: ModelStore, version: str, approved_by: str) -> dg.ExecuteInProcessResult:
    return model_approval_job.execute_in_process(
        run_config={
            "ops": {
                "approve_model_version": {
                    "config": {"version": version, "approved_by": approved_by}
                }
            }
        },
        resources={"mlflow_models": store.resource()},
        raise_on_error=False,
    )


def champion(store: ModelStore):
    return MlflowClient(store.tracking_uri).get_model_version_by_alias(MODEL_NAME, "champion")


def failure_description(result: dg.ExecuteInProcessResult) -> str:
    assert not result.success
    return result.failure_data_for_node("approve_model_version").user_failure_data.description


def test_a_waiting_version_becomes_champion_with_its_approver(store):
    result = approve(store, "2", "Jane Doe")

    assert result.success
    approved = champion(store)
    assert str(approved.version) == "2"
    assert approved.tags["approved_by"] == "Jane Doe"
    assert approved.tags[registry.PENDING_TAG] == "false" and approved.tags["approved_at"]
    (observation,) = result.asset_observations_for_node("approve_model_version")
    assert observation.asset_key == dg.AssetKey("champion_model")
    metadata = {key: value.value for key, value in observation.metadata.items()}
    assert metadata["version"] == "2" and metadata["approved_by"] == "Jane Doe"
    assert metadata["previous_champion_version"] == "1"


def test_a_version_not_waiting_fails_with_the_reason_and_moves_nothing(store):
    result = approve(store, "1", "Jane Doe")

    assert "v1 is not waiting for approval" in failure_description(result)
    assert str(champion(store).version) == "1"
    waiting = MlflowClient(store.tracking_uri).get_model_version(MODEL_NAME, "2")
    assert waiting.tags[registry.PENDING_TAG] == "true"


def test_a_blank_approver_fails_before_anything_changes(store):
    result = approve(store, "2", "   ")

    assert "approved_by is empty" in failure_description(result)
    assert str(champion(store).version) == "1"


def test_the_job_is_in_the_definitions_and_never_races_the_main_graph():
    from affluent_assets.definitions import defs

    job = defs.get_job_def("model_approval_job")
    assert job.tags["affluent/graph"] == "main"
    assert "Launchpad" in job.description and 'approved_by: "Jane Doe"' in job.description
