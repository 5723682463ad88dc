"""The holdout boundary at the asset level: `model_training` reads customer_features and
customer_split from DuckDB; garbage in the holdout rows must change nothing it fits or chooses."""

import json

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
from dagster_duckdb import DuckDBResource

from affluent_assets.definitions import MAIN_ASSETS
from affluent_assets.defs.resources import DuckDBTableIOManager, ExtractSource, MlflowModels
from affluent_assets.lib.demo_data import generate_customers
from affluent_assets.lib.features import (
    CATEGORICAL_FEATURES,
    NUMERIC_FEATURES,
    build_features,
    label_vector,
)
from affluent_assets.lib.features import clean_customers as clean_extract
from affluent_assets.lib.training import split_customers
from affluent_assets.lib.warehouse import replace_table

TRAINING_OUTPUTS = dg.AssetSelection.assets(
    "model_comparison", "affluent_model", "out_of_fold_scores"
)
FAST = {"ops": {"model_training": {"config": {"tuning_budget_seconds": 0, "cv_folds": 3}}}}


def train_on(folder, features: pd.DataFrame, split: pd.DataFrame) -> dict[str, pd.DataFrame]:
    folder.mkdir()
    database = str(folder / "warehouse.duckdb")
    with duckdb.connect(database) as con:
        replace_table(con, "customer_features", features)
        replace_table(con, "customer_split", split)
    resource = DuckDBResource(database=database)
    result = dg.materialize(
        MAIN_ASSETS,
        selection=TRAINING_OUTPUTS,
        run_config=FAST,
        resources={
            "extract": ExtractSource(location=str(folder)),
            "mlflow_models": MlflowModels(
                tracking_uri=f"sqlite:///{folder / 'mlflow.db'}", artifact_root=str(folder / "art")
            ),
            "duckdb": resource,
            "io_manager": DuckDBTableIOManager(duckdb=resource),
        },
    )
    assert result.success
    with duckdb.connect(database, read_only=True) as con:
        return {
            t: con.execute(f"select * from {t}").df()
            for t in ("model_comparison", "affluent_model", "out_of_fold_scores")
        }


def test_garbage_in_holdout_rows_changes_nothing_that_is_fitted_or_chosen(tmp_path):
    clean = clean_extract(generate_customers(1500, seed=5), "demo")
    features = build_features(clean)
    split = split_customers(clean["customer_key"], label_vector(clean), 0.3, seed=5)
    garbage = features.copy()
    holdout = split["split"].to_numpy() == "holdout"
    garbage.loc[holdout, NUMERIC_FEATURES] = 1e9
    garbage.loc[holdout, CATEGORICAL_FEATURES] = "GARBAGE"
    garbage_split = split.copy()
    garbage_split.loc[holdout, "is_affluent"] = 1 - garbage_split.loc[holdout, "is_affluent"]

    clean_run = train_on(tmp_path / "clean", features, split)
    garbage_run = train_on(tmp_path / "garbage", garbage, garbage_split)

    varying = ["fit_seconds_mean", "mlflow_run_id"]
    pd.testing.assert_frame_equal(
        clean_run["model_comparison"].drop(columns=varying),
        garbage_run["model_comparison"].drop(columns=varying),
    )
    # Equal up to float summation order (threads): garbage of 1e9 would move these by far more.
    clean_model, garbage_model = (
        clean_run["affluent_model"].iloc[0],
        garbage_run["affluent_model"].iloc[0],
    )
    for column in ("threshold", "cv_pr_auc", "cv_recall_at_threshold"):
        assert clean_model[column] == pytest.approx(garbage_model[column], rel=1e-9)
    np.testing.assert_allclose(
        json.loads(clean_model["decile_edges"]),
        json.loads(garbage_model["decile_edges"]),
        rtol=1e-9,
    )
    assert clean_model["params"] == garbage_model["params"]
    np.testing.assert_allclose(
        clean_run["out_of_fold_scores"]["oof_probability"],
        garbage_run["out_of_fold_scores"]["oof_probability"],
        rtol=1e-9,
    )
    assert len(clean_run["out_of_fold_scores"]) == (~holdout).sum()
