"""The vectorized tree SHAP equals XGBoost's own `pred_contribs`, blanks and deep trees too."""

import numpy as np
import pytest
import xgboost as xgb

from affluent_assets.lib.prepared import prepared_matrix
from affluent_assets.lib.tree_shap import GROUP_BITS, MAX_PATH_NODES, TreeExplainer, _groups


def own_contributions(booster: xgb.Booster, matrix: np.ndarray) -> np.ndarray:
    return booster.predict(xgb.DMatrix(matrix), pred_contribs=True)


def test_equals_pred_contribs_of_the_trained_model(demo_model):
    pipeline = demo_model.model.model.pipeline
    matrix = prepared_matrix(pipeline, demo_model.features.head(400))
    booster = pipeline.named_steps["model"].get_booster()
    phi, base = TreeExplainer(booster).contributions(matrix)
    expected = own_contributions(booster, matrix)
    np.testing.assert_allclose(phi, expected[:, :-1], atol=2e-5)
    np.testing.assert_allclose(base, expected[:, -1], atol=2e-5)


@pytest.mark.parametrize("depth", [1, 3, 6])
def test_equals_pred_contribs_with_blanks_and_repeated_features(depth):
    rng = np.random.default_rng(depth)
    X = rng.normal(size=(2000, 5)).astype("float32")
    y = (X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(size=2000) > 0).astype(int)
    X[rng.random(X.shape) < 0.1] = np.nan  # blanks follow each split's default direction
    booster = xgb.train(
        {"max_depth": depth, "objective": "binary:logistic", "eta": 0.3},
        xgb.DMatrix(X, label=y),
        num_boost_round=15,
    )
    sample = X[:300]
    phi, base = TreeExplainer(booster).contributions(sample)
    expected = own_contributions(booster, sample)
    np.testing.assert_allclose(phi, expected[:, :-1], atol=2e-5)
    np.testing.assert_allclose(base, expected[:, -1], atol=2e-5)


@pytest.mark.parametrize(("depth", "groups_per_tree"), [(2, 1), (4, 2), (6, 8)])
def test_leaves_are_walked_in_groups_of_a_few_bits(depth, groups_per_tree):
    rng = np.random.default_rng(depth)
    X = rng.normal(size=(20000, 8)).astype("float32")
    y = (X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(size=20000) > 0).astype(int)
    booster = xgb.train(
        {"max_depth": depth, "objective": "binary:logistic", "min_child_weight": 0},
        xgb.DMatrix(X, label=y),
        4,
    )
    explainer = TreeExplainer(booster)
    full = [tree for tree in explainer.trees if len(tree.leaves) == 2**depth]
    assert full  # the leaves under the highest nodes whose bits fit the tables' limit
    assert sum(len(_groups(tree)) for tree in full) == len(full) * groups_per_tree
    assert explainer.flat.bits.max() <= GROUP_BITS
    assert len(explainer.flat.bits) < sum(len(tree.leaves) for tree in explainer.trees)


def test_trees_deeper_than_the_tables_allow_are_refused():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 4)).astype("float32")
    y = (np.sin(X[:, 0] * 9) + rng.normal(size=3000) > 0).astype(int)
    booster = xgb.train(
        {"max_depth": MAX_PATH_NODES + 2, "objective": "binary:logistic", "min_child_weight": 0},
        xgb.DMatrix(X, label=y),
        1,
    )
    with pytest.raises(ValueError, match="deeper than"):
        TreeExplainer(booster)
