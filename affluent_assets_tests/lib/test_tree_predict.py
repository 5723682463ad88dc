"""The compiled tables predict what the booster predicts, bit for bit, or are not used."""

import json

import numpy as np
import pytest
import xgboost as xgb

from affluent_assets.lib import prepared
from affluent_assets.lib.prepared import pipeline_probability, prepared_matrix
from affluent_assets.lib.tree_predict import MAX_LEAVES, TreePredictor


def a_booster(
    depth: int, rounds: int = 20, seed: int = 0, **params
) -> tuple[xgb.Booster, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(3000, 6)) * 5).astype("float32")
    y = (X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(size=3000) > 0).astype(int)
    X[rng.random(X.shape) < 0.1] = np.nan  # blanks follow each split's default direction
    params = {"max_depth": depth, "objective": "binary:logistic", **params}
    return xgb.train(params, xgb.DMatrix(X, label=y), rounds), X


def test_equals_inplace_predict_of_the_trained_model_bit_for_bit(demo_model):
    pipeline = demo_model.model.model.pipeline
    matrix = prepared_matrix(pipeline, demo_model.features)
    booster = pipeline.named_steps["model"].get_booster()
    expected = booster.inplace_predict(matrix)
    predictor = TreePredictor.of(booster)
    assert np.array_equal(predictor.probability(matrix), expected)  # column-major, as prepared
    assert np.array_equal(predictor.probability(np.ascontiguousarray(matrix)), expected)


@pytest.mark.parametrize("depth", [1, 3, 6])
@pytest.mark.parametrize("base_score", [None, 0.3, 0.9])
def test_equals_inplace_predict_with_blanks_and_any_base_score(depth, base_score):
    extra = {} if base_score is None else {"base_score": base_score}
    booster, X = a_booster(depth, seed=depth, **extra)
    assert np.array_equal(TreePredictor.of(booster).probability(X), booster.inplace_predict(X))


def test_equals_inplace_predict_far_from_the_threshold():
    # Large steps push margins to tens of log-odds: the sigmoid's tails, in float32.
    booster, X = a_booster(4, rounds=200, eta=1.0, min_child_weight=0, reg_lambda=0)
    margins = booster.inplace_predict(X, predict_type="margin")
    assert np.abs(margins).max() > 20
    assert np.array_equal(TreePredictor.of(booster).probability(X), booster.inplace_predict(X))


def test_predicts_one_row_and_none():
    booster, X = a_booster(3)
    predictor = TreePredictor.of(booster)
    assert np.array_equal(predictor.probability(X[:1]), booster.inplace_predict(X[:1]))
    assert predictor.probability(X[:0]).shape == (0,)


@pytest.mark.parametrize(
    "params",
    [
        {"objective": "reg:squarederror"},
        {"objective": "multi:softprob", "num_class": 3},
        {"max_depth": 8, "min_child_weight": 0},  # trees with more leaves than one mask
    ],
)
def test_boosters_it_cannot_predict_exactly_get_no_predictor(params):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4000, 6)).astype("float32")
    y = rng.integers(0, 3 if "num_class" in params else 2, size=4000)
    booster = xgb.train({"max_depth": 3, "objective": "binary:logistic", **params},
                        xgb.DMatrix(X, label=y), 3)  # fmt: skip
    if "num_class" not in params and params.get("max_depth") == 8:
        leaves = booster.trees_to_dataframe().query("Feature == 'Leaf'").groupby("Tree").size()
        assert leaves.max() > MAX_LEAVES
    assert TreePredictor.of(booster) is None


def test_pipeline_probability_through_the_tables_equals_predict_proba(demo_model, monkeypatch):
    pipeline = demo_model.model.model.pipeline
    features = demo_model.features
    monkeypatch.setattr(prepared, "COMPILED_ROWS", 1)  # the demo's rows through the tables
    compiled = pipeline_probability(pipeline, features)
    monkeypatch.setattr(prepared, "COMPILED_ROWS", len(features) + 1)
    assert np.array_equal(compiled, pipeline_probability(pipeline, features))
    np.testing.assert_allclose(compiled, pipeline.predict_proba(features)[:, 1], rtol=0, atol=1e-9)


def test_equals_inplace_predict_where_the_exponent_would_overflow():
    # Leaves set to margins past float32's exp range: the booster caps the exponent, and so
    # must the tables (uncapped, 1 / inf would give 0 where the booster gives 3e-39).
    booster, X = a_booster(2, rounds=2)
    model = json.loads(booster.save_raw("json"))
    tree = model["learner"]["gradient_booster"]["model"]["trees"][0]
    leaves = [i for i, child in enumerate(tree["left_children"]) if child == -1]
    for k, leaf in enumerate(leaves):
        tree["split_conditions"][leaf] = tree["base_weights"][leaf] = [-95.0, 95.0][k % 2]
    edited = xgb.Booster()
    edited.load_model(bytearray(json.dumps(model).encode()))
    expected = edited.inplace_predict(X)
    assert (
        expected.min() > 0 and np.abs(edited.inplace_predict(X, predict_type="margin")).min() > 88.7
    )
    assert np.array_equal(TreePredictor.of(edited).probability(X), expected)
