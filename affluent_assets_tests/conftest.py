"""Shared fixtures: a small seeded demo extract, one tiny model trained on its train rows, and a
real PostgreSQL server."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# OpenMP threads (XGBoost, scikit-learn) spin while waiting by default; on a busy 2-core runner
# that makes a 30-tree fit take seconds instead of tenths. Must be set before they load.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from affluent_assets.lib.demo_data import generate_customers  # noqa: E402
from affluent_assets.lib.features import build_features, clean_customers, label_vector  # noqa: E402
from affluent_assets.lib.training import (  # noqa: E402
    ModelSpec,
    TrainedModel,
    split_customers,
    train_affluent_model,
)
from affluent_assets_tests.servers import postgres_server  # noqa: E402

SEED = 7
TINY_XGBOOST = ModelSpec("xgboost", params={"n_estimators": 30})


@pytest.fixture
def demo_raw() -> pd.DataFrame:
    """2,000 synthetic customers with the contract's 30 columns (a fresh copy per test)."""
    return generate_customers(2000, seed=SEED)


@dataclass(frozen=True)
class DemoModel:
    clean: pd.DataFrame
    features: pd.DataFrame
    labels: pd.Series
    is_train: pd.Series  # boolean, aligned with features
    model: TrainedModel


def train_demo_model(
    features: pd.DataFrame, labels: pd.Series, is_train: pd.Series
) -> TrainedModel:
    """The tiny model the lib tests use: 30 trees, 3 folds, fitted on the train rows only."""
    return train_affluent_model(
        features[is_train],
        labels[is_train],
        TINY_XGBOOST,
        target_recall=0.7,
        seed=SEED,
        cv_folds=3,
    )


@pytest.fixture(scope="session")
def demo_model() -> DemoModel:
    """3,000 demo customers -> clean -> features -> 80/20 split -> tiny model (train rows only).
    Session-scoped: treat every frame in it as read-only."""
    clean = clean_customers(generate_customers(3000, seed=SEED), "demo.xlsx")
    features = build_features(clean)
    labels = label_vector(clean)
    split = split_customers(features["customer_key"], labels, holdout_fraction=0.2, seed=SEED)
    is_train = pd.Series(split["split"].to_numpy() == "train", index=features.index)
    return DemoModel(
        clean, features, labels, is_train, train_demo_model(features, labels, is_train)
    )


@pytest.fixture(scope="session")
def postgres():
    """One real PostgreSQL server for the session's tests (each takes its own database)."""
    with postgres_server() as server:
        yield server


# The modules that take a minute or more (most start `dagster dev` or other servers and wait on
# sensor ticks), longest first. `make test` runs modules on both cores (pytest-xdist, whole
# modules per worker); started first, they overlap the short ones instead of running alone at
# the end. Only the order changes: a module missing here still runs, just later.
ROOT = Path(__file__).parent
LONG_MODULES = [
    "test_dev_server_e2e.py",
    "test_crash_recovery.py",
    "test_telemetry.py",
    "defs/test_score_command.py",
    "defs/test_mlflow_server.py",
    "test_training_isolation.py",
    "web/test_inference.py",
    "web/test_upload_page.py",
    "test_main_graph.py",
]


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        path = item.path.relative_to(ROOT).as_posix()
        return LONG_MODULES.index(path) if path in LONG_MODULES else len(LONG_MODULES)

    items.sort(key=rank)  # stable: tests keep their order within each module
