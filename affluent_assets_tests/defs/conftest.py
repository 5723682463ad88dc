"""Shared fixtures for Dagster tests: a small registered model in a temporary MLflow store,
and temporary landing/quarantine/warehouse folders for the landing assets."""

import atexit
import functools
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from dagster_duckdb import DuckDBResource

from affluent_assets.defs.landing.assets import batch_scores, landed_batches
from affluent_assets.defs.resources import MlflowModels, no_progress
from affluent_assets.lib import registry
from affluent_assets.lib.demo_data import generate_customers
from affluent_assets.lib.evaluation import HoldoutCurve
from affluent_assets.lib.features import (
    MODEL_FEATURES,
    build_features,
    clean_customers,
    label_vector,
)
from affluent_assets.lib.landing import batch_key_for
from affluent_assets.lib.training import (
    ModelSpec,
    predict_probability,
    split_customers,
    train_affluent_model,
)

MODEL_NAME = "affluent_classifier"


@dataclass(frozen=True)
class ModelStore:
    tracking_uri: str
    artifact_root: str
    model: registry.RegisteredModel

    def resource(self) -> MlflowModels:
        return MlflowModels(
            tracking_uri=self.tracking_uri, artifact_root=self.artifact_root, model_name=MODEL_NAME
        )


TRAINING_ROWS = 1_500


def training_data() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features and split of the small demo set the test model is trained on."""
    clean = clean_customers(generate_customers(TRAINING_ROWS, seed=7), "demo")
    features = build_features(clean)
    split = split_customers(clean["customer_key"], label_vector(clean), 0.3, seed=7)
    return features, split


@functools.cache
def _empty_store() -> Path:
    """A new sqlite MLflow store, its tables made by MLflow, once per test process: making them
    (MLflow's database migrations) costs about 2 s, and a test store starts as a copy of it."""
    folder = Path(tempfile.mkdtemp(prefix="affluent-mlflow-template-"))
    atexit.register(shutil.rmtree, folder, True)
    registry._client(f"sqlite:///{folder / 'mlflow.db'}").search_experiments()
    return folder / "mlflow.db"


def register_tiny_model(root: Path, tracking_uri: str | None = None) -> ModelStore:
    """A small XGBoost model trained by the platform's own training code on demo rows and
    registered as `champion` in an MLflow store in `root` (or at `tracking_uri`, with `root`
    as the configured artifact folder)."""
    if tracking_uri is None:
        tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
        if not (root / "mlflow.db").exists():
            root.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(_empty_store(), root / "mlflow.db")
    features, split = training_data()
    train = (split["split"] == "train").to_numpy()
    labels = split["is_affluent"][train]
    spec = ModelSpec("xgboost", class_weighting=True, params={"n_estimators": 40})
    trained = train_affluent_model(features[train], labels, spec, 0.8, seed=7, cv_folds=3)
    registered = registry.log_and_register(
        tracking_uri=tracking_uri,
        experiment="affluent_assets_tests",
        artifact_root=str(root / "artifacts"),
        model_name=MODEL_NAME,
        model=trained.model,
        signature_rows=features[MODEL_FEATURES].head(20),
        params=trained.params,
        metrics={"threshold": trained.threshold.threshold},
        threshold=trained.threshold.threshold,
        decile_edges=trained.decile_edges,
        tags={"source": "tests"},
        run_name="tests",
    )
    holdout = ~train
    probability = predict_probability(trained.model, features[holdout])
    curve = HoldoutCurve.from_holdout(split["is_affluent"][holdout], probability)
    registry.log_holdout_curve(tracking_uri, registered.run_id, curve)
    registry.set_alias(tracking_uri, MODEL_NAME, registered.version)
    return ModelStore(tracking_uri, str(root / "artifacts"), registered)


@pytest.fixture(scope="session")
def model_store(tmp_path_factory) -> ModelStore:
    return register_tiny_model(tmp_path_factory.mktemp("mlflow"))


@dataclass
class LandingStores:
    landing: Path
    quarantine: Path
    warehouse: Path
    lake: Path
    models: ModelStore
    instance: dg.DagsterInstance

    def resources(self) -> dict:
        return {
            "duckdb": DuckDBResource(database=str(self.warehouse)),
            "mlflow_models": self.models.resource(),
            "scoring_progress": dg.ResourceDefinition.hardcoded_resource(no_progress),
        }

    def run(
        self, batch_key: str, chunk_rows: int | None = None, tags: dict | None = None
    ) -> dg.ExecuteInProcessResult:
        """Materialize one batch the way the landing job does, without raising on failure."""
        self.instance.add_dynamic_partitions(landed_batches.name, [batch_key])
        chunking = {"chunk_rows": chunk_rows} if chunk_rows else {}
        return dg.materialize(
            [batch_scores],
            partition_key=batch_key,
            instance=self.instance,
            resources=self.resources(),
            run_config=self._config(chunking),
            raise_on_error=False,
            tags=tags,
        )

    def run_group(self, names: list[str]) -> dg.ExecuteInProcessResult:
        """Materialize the batches of `names` in one run, as the landing sensor asks for files
        that land together: a range of keys added in one go, the files named in the config."""
        keys = [batch_key_for(name) for name in names]
        self.instance.add_dynamic_partitions(landed_batches.name, keys)
        return dg.materialize(
            [batch_scores],
            instance=self.instance,
            resources=self.resources(),
            run_config=self._config({"files": dict(zip(keys, names, strict=True))}),
            raise_on_error=False,
            tags={
                ASSET_PARTITION_RANGE_START_TAG: keys[0],
                ASSET_PARTITION_RANGE_END_TAG: keys[-1],
            },
        )

    def _config(self, extra: dict) -> dict:
        folders = {"landing_dir": str(self.landing), "quarantine_dir": str(self.quarantine),
                   "lake_dir": str(self.lake)}  # fmt: skip
        return {"ops": {"batch_scores": {"config": {**folders, **extra}}}}


@pytest.fixture
def landing_stores(tmp_path, model_store, monkeypatch) -> LandingStores:
    """Empty landing and quarantine folders and warehouse path under tmp_path; the settings
    point there too, so nothing can touch the repository's data/ folder."""
    stores = LandingStores(
        landing=tmp_path / "landing",
        quarantine=tmp_path / "quarantine",
        warehouse=tmp_path / "warehouse.duckdb",
        lake=tmp_path / "lake",
        models=model_store,
        instance=dg.DagsterInstance.ephemeral(),
    )
    stores.landing.mkdir()
    monkeypatch.setenv("AFFLUENT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AFFLUENT_LANDING", str(stores.landing))
    monkeypatch.setenv("AFFLUENT_QUARANTINE", str(stores.quarantine))
    monkeypatch.setenv("AFFLUENT_WAREHOUSE", str(stores.warehouse))
    monkeypatch.setenv("AFFLUENT_LAKE", str(stores.lake))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", model_store.tracking_uri)
    assert not os.path.exists(stores.warehouse)
    return stores
