"""A shared MLflow server: a real `mlflow server` (backend store in the PostgreSQL server the
tests start, artifacts served by the server). Training registers there, new experiments take the
server's artifact location instead of a folder on the client's disk, and a landing run scores
with the server's champion."""

import os
import subprocess
import sys

import duckdb
import pytest
from mlflow.tracking import MlflowClient

from affluent_assets.lib import registry
from affluent_assets.lib.demo_data import generate_customers
from affluent_assets.lib.demo_files import write_extract
from affluent_assets_tests.defs.conftest import MODEL_NAME, register_tiny_model
from affluent_assets_tests.servers import mlflow_server


@pytest.fixture(scope="module")
def tracking_server(postgres, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow-server")
    backend = postgres.create_database("mlflow")
    with mlflow_server(backend, folder / "served") as uri:
        yield uri, folder / "served"


def test_new_experiments_take_the_servers_artifact_location(tracking_server, tmp_path):
    uri, served = tracking_server
    local = tmp_path / "client-artifacts"  # the default AFFLUENT_MLFLOW_ARTIFACTS of a client
    experiment_id = registry.ensure_experiment(uri, "shared", str(local))
    location = MlflowClient(uri).get_experiment(experiment_id).artifact_location
    assert location.startswith("mlflow-artifacts:"), location
    # Object storage every host reaches is kept as given; a local store keeps its folder.
    assert (
        registry.experiment_artifact_location(uri, "s3://bank-ml/mlflow") == "s3://bank-ml/mlflow"
    )
    sqlite = f"sqlite:///{tmp_path / 'm.db'}"
    assert registry.experiment_artifact_location(sqlite, str(local)) == local.resolve().as_uri()


def test_a_landing_run_scores_with_the_servers_champion(tracking_server, landing_stores, tmp_path):
    uri, served = tracking_server
    local = tmp_path / "client-artifacts"
    register_tiny_model(local, tracking_uri=uri)
    # A second version, so the champion's version differs from the other stores' tests use.
    store = register_tiny_model(local, tracking_uri=uri)
    client = MlflowClient(uri)
    assert client.get_model_version_by_alias(MODEL_NAME, "champion").version == "2"
    # The model and its holdout curve went to the server's folder, nothing to the client's.
    assert not local.exists()
    assert list(served.rglob("MLmodel")) and list(served.rglob("holdout_curve.json"))

    path = write_extract(generate_customers(500, seed=43).drop(columns="C_seg"), tmp_path / "b.csv")
    home = tmp_path / "dagster_home"
    home.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "affluent_assets.cli", "score", str(path), "--top", "0"],
        env={**os.environ, "DAGSTER_HOME": str(home), "MLFLOW_TRACKING_URI": uri,
             "AFFLUENT_MLFLOW_ARTIFACTS": str(local)},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with duckdb.connect(str(landing_stores.warehouse), read_only=True) as con:
        scored = con.execute(
            "select count(*), min(model_version), count(distinct run_id) from batch_scores"
        ).fetchone()
        explained = con.execute(
            "select count(*), count(reason_1), count(expected_precision) from latest_candidates"
        ).fetchone()
    assert scored == (500, store.model.version, 1)
    assert explained[0] > 0 and explained[0] == explained[1] == explained[2]
