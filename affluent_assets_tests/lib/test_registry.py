"""The holdout curve stored with a training run and read back for its registered version."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from affluent_assets.lib import registry
from affluent_assets.lib.evaluation import HoldoutCurve


@pytest.fixture
def tracking(tmp_path):
    """A private sqlite store whose artifacts stay under tmp_path, and one finished run."""
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = registry.ensure_experiment(tracking_uri, "curves", str(tmp_path / "artifacts"))
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_param("model", "test")
    finally:
        mlflow.set_tracking_uri(previous)
    return tracking_uri, run.info.run_id


def _model(run_id: str) -> registry.RegisteredModel:
    return registry.RegisteredModel("affluent_classifier", "1", run_id, 0.5, [0.1, 0.9])


def test_holdout_curve_round_trips_through_the_run(tracking, tmp_path):
    tracking_uri, run_id = tracking
    rng = np.random.default_rng(3)
    y = pd.Series((rng.random(400) < 0.3).astype(int))
    p = pd.Series(np.round(rng.random(400), 3))
    curve = HoldoutCurve.from_holdout(y, p, max_points=50)

    registry.log_holdout_curve(tracking_uri, run_id, curve)
    loaded = registry.load_holdout_curve(tracking_uri, _model(run_id))

    assert loaded is not None
    assert loaded.to_dict() == curve.to_dict()
    queries = pd.Series(np.linspace(0, 1, 41))
    pd.testing.assert_frame_equal(loaded.at(queries), curve.at(queries))
    artifacts = [item.path for item in MlflowClient(tracking_uri).list_artifacts(run_id)]
    assert artifacts == [registry.HOLDOUT_CURVE_ARTIFACT]
    assert list((tmp_path / "artifacts").rglob(registry.HOLDOUT_CURVE_ARTIFACT))


def test_a_run_without_a_holdout_curve_loads_none(tracking):
    tracking_uri, run_id = tracking
    assert registry.load_holdout_curve(tracking_uri, _model(run_id)) is None


def test_a_logged_model_names_what_loading_it_needs_at_the_installed_versions(tmp_path):
    from importlib import metadata

    from affluent_assets_tests.defs.conftest import MODEL_NAME, register_tiny_model

    store = register_tiny_model(tmp_path)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(store.tracking_uri)
    try:
        path = Path(mlflow.pyfunc.get_model_dependencies(f"models:/{MODEL_NAME}/1"))
    finally:
        mlflow.set_tracking_uri(previous)
    pinned = dict(line.split("==") for line in path.read_text().split() if "==" in line)
    booster = metadata.packages_distributions()["xgboost"][0]  # xgboost-cpu here
    for name in ("affluent-assets", "scikit-learn", booster, "numpy", "pandas", "cloudpickle"):
        assert pinned.get(name) == metadata.version(name), name
    assert "mlflow" in pinned
