"""Training: a stratified seeded split, the threshold rule, deciles, and proof that the holdout
never reaches a fitted step."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from affluent_assets.lib.features import MODEL_FEATURES, NUMERIC_FEATURES
from affluent_assets.lib.training import (
    ModelSpec,
    assign_decile,
    choose_threshold,
    cross_validate,
    decile_edges,
    predict_probability,
    split_customers,
)
from affluent_assets_tests.conftest import train_demo_model

# --- split ------------------------------------------------------------------------------------


@pytest.fixture
def keys_and_labels() -> tuple[pd.Series, pd.Series]:
    rng = np.random.default_rng(0)
    labels = pd.Series((rng.random(2000) < 0.165).astype("int64"))
    keys = pd.Series([f"{i}-{i + 1}" for i in range(2000)])
    return keys, labels


def test_split_is_disjoint_complete_and_sized(keys_and_labels):
    keys, labels = keys_and_labels
    split = split_customers(keys, labels, holdout_fraction=0.2, seed=7)
    assert list(split.columns) == ["customer_key", "is_affluent", "split"]
    assert split["customer_key"].tolist() == keys.tolist()  # every key once, in order
    assert split["is_affluent"].tolist() == labels.tolist()
    assert set(split["split"]) == {"train", "holdout"}
    assert (split["split"] == "holdout").sum() == 400


def test_split_is_stratified(keys_and_labels):
    keys, labels = keys_and_labels
    split = split_customers(keys, labels, holdout_fraction=0.2, seed=7)
    share = split.groupby("split")["is_affluent"].mean()
    assert abs(share["train"] - share["holdout"]) < 0.01
    assert abs(share["holdout"] - labels.mean()) < 0.01


def test_split_is_seeded(keys_and_labels):
    keys, labels = keys_and_labels
    first = split_customers(keys, labels, 0.2, seed=7)
    again = split_customers(keys, labels, 0.2, seed=7)
    other = split_customers(keys, labels, 0.2, seed=8)
    pd.testing.assert_frame_equal(first, again)
    assert not first["split"].equals(other["split"])


# --- threshold --------------------------------------------------------------------------------


Y = pd.Series([1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1])
P = pd.Series([0.95, 0.9, 0.8, 0.7, 0.7, 0.6, 0.55, 0.4, 0.3, 0.2, 0.1, 0.05])


def _brute_force(y: pd.Series, p: pd.Series, target: float) -> tuple[float, float, float]:
    """(threshold, recall, precision): the highest candidate threshold whose recall >= target."""
    best = None
    for t in sorted(set(p)):
        flagged = p >= t
        recall = (flagged & (y == 1)).sum() / (y == 1).sum()
        if recall >= target:
            best = (t, recall, (flagged & (y == 1)).sum() / flagged.sum())
    return best


@pytest.mark.parametrize("target", [0.1, 1 / 6, 0.34, 0.5, 0.5001, 2 / 3, 0.7, 0.84, 1.0])
def test_choose_threshold_is_highest_reaching_target(target):
    expected_threshold, expected_recall, expected_precision = _brute_force(Y, P, target)
    choice = choose_threshold(Y, P, target)
    assert choice.threshold == pytest.approx(expected_threshold)
    assert choice.recall == pytest.approx(expected_recall)
    assert choice.precision == pytest.approx(expected_precision)
    assert choice.recall >= target
    flagged = P.ge(expected_threshold).mean()
    assert choice.flagged_share == pytest.approx(flagged)
    assert choice.target == target and choice.policy == "target_recall"


def test_choose_threshold_hand_values():
    # 6 positives; recall 0.5 needs 3: flagged {0.95, 0.9, 0.8, 0.7, 0.7} -> 3 hits of 5.
    choice = choose_threshold(Y, P, 0.5)
    assert choice.threshold == 0.7
    assert choice.recall == 0.5
    assert choice.precision == pytest.approx(3 / 5)
    assert choice.flagged_share == pytest.approx(5 / 12)
    # Full recall needs the lowest positive's score.
    assert choose_threshold(Y, P, 1.0).threshold == 0.05


def test_choose_threshold_random_scores_match_brute_force():
    rng = np.random.default_rng(3)
    y = pd.Series((rng.random(300) < 0.2).astype(int))
    p = pd.Series(np.round(rng.random(300) * 0.6 + 0.3 * y, 2))  # ties on purpose
    for target in (0.25, 0.5, 0.75, 0.9):
        expected_threshold, expected_recall, _ = _brute_force(y, p, target)
        choice = choose_threshold(y, p, target)
        assert choice.threshold == pytest.approx(expected_threshold)
        assert choice.recall == pytest.approx(expected_recall)


@pytest.mark.parametrize("target", [0, 0.0, -0.5, 1.0001, 2])
def test_choose_threshold_rejects_bad_target(target):
    with pytest.raises(ValueError, match="target_recall"):
        choose_threshold(Y, P, target)


# --- deciles ----------------------------------------------------------------------------------


def test_decile_edges_descending_quantiles():
    scores = pd.Series(np.arange(1, 1001) / 1000)
    edges = decile_edges(scores)
    assert len(edges) == 9
    assert edges == sorted(edges, reverse=True)
    np.testing.assert_allclose(
        edges, np.quantile(scores, [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    )


def test_assign_decile_top_is_one():
    edges = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    probability = pd.Series([0.99, 0.9, 0.85, 0.5, 0.45, 0.1, 0.05, 0.0], index=list("abcdefgh"))
    deciles = assign_decile(probability, edges)
    assert deciles.tolist() == [1, 1, 2, 5, 6, 9, 10, 10]
    assert deciles.index.tolist() == list("abcdefgh")
    assert deciles.dtype == "int64"


def test_assign_decile_splits_the_training_population_in_tenths():
    scores = pd.Series(np.random.default_rng(1).random(1000))
    deciles = assign_decile(scores, decile_edges(scores))
    counts = deciles.value_counts().sort_index()
    assert counts.index.tolist() == list(range(1, 11))
    assert counts.between(99, 101).all()
    # Higher score, better (lower) decile.
    assert deciles[scores.idxmax()] == 1 and deciles[scores.idxmin()] == 10
    order = scores.sort_values(ascending=False).index
    assert deciles[order].is_monotonic_increasing


def test_assign_decile_accepts_numpy():
    deciles = assign_decile(np.array([0.95, 0.05]), [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    assert deciles.tolist() == [1, 10]


# --- the holdout never reaches a fit ----------------------------------------------------------


def test_model_artifacts_come_from_train_rows_only(demo_model):
    features, is_train, model = demo_model.features, demo_model.is_train, demo_model.model
    train = features[is_train]
    assert 0 < (~is_train).sum() < is_train.sum()

    # Out-of-fold scores exist for exactly the training rows.
    assert model.oof_probability.index.equals(train.index)
    assert model.oof_probability.between(0, 1).all()

    # The numeric imputer's medians are the training rows' medians, not all rows'.
    numeric = model.model.pipeline.named_steps["preprocess"].named_transformers_["numeric"]
    imputer = numeric.named_steps["impute"]
    assert imputer.n_features_in_ == len(NUMERIC_FEATURES)
    train_medians = train[NUMERIC_FEATURES].median().fillna(0.0).to_numpy()
    all_medians = features[NUMERIC_FEATURES].median().fillna(0.0).to_numpy()
    np.testing.assert_allclose(imputer.statistics_, train_medians)
    assert not np.allclose(all_medians, train_medians)  # so the check above can fail

    # Deciles are cut on the training rows' out-of-fold scores.
    assert model.decile_edges == decile_edges(model.oof_probability)
    assert model.threshold.threshold in set(model.oof_probability)


def test_params_recorded_and_weighting_from_train_rows(demo_model):
    params = demo_model.model.params
    assert params["family"] == "xgboost"
    assert params["xgboost.n_estimators"] == 30
    assert params["cv_folds"] == 3 and params["seed"] == 7
    labels = demo_model.labels[demo_model.is_train]
    expected_weight = (labels == 0).sum() / (labels == 1).sum()
    estimator = demo_model.model.model.pipeline.named_steps["model"]
    assert estimator.get_params()["scale_pos_weight"] == pytest.approx(expected_weight)
    assert estimator.get_params()["n_estimators"] == 30


def test_training_rejects_a_single_class(demo_model):
    features, is_train = demo_model.features, demo_model.is_train
    with pytest.raises(ValueError, match="0 AFFLUENT"):
        train_demo_model(features, pd.Series(0, index=features.index), is_train)


def test_model_is_better_than_chance_on_holdout(demo_model):
    from sklearn.metrics import roc_auc_score

    holdout = ~demo_model.is_train
    probability = predict_probability(demo_model.model.model, demo_model.features[holdout])
    assert roc_auc_score(demo_model.labels[holdout], probability) > 0.75


# --- progress lines ---------------------------------------------------------------------------


def test_cross_validation_logs_one_line_per_fold_in_order(demo_model, capsys):
    train = demo_model.is_train
    X, y = demo_model.features.loc[train, MODEL_FEATURES], demo_model.labels[train]
    spec = ModelSpec("logistic_regression", class_weighting=False)
    heard: list[str] = []
    result = cross_validate(spec, X, y, cv_folds=4, seed=0, log=heard.append)
    assert len(heard) == 4
    for k, line in enumerate(heard, start=1):
        pr_auc = result.folds["pr_auc"].iloc[k - 1]
        assert line.startswith(
            f"fold {k}/4 of logistic_regression_unweighted: PR-AUC {pr_auc:.3f} ("
        )
        assert line.endswith(" s)")
    # Progress goes to `log` only: the default stays silent and nothing reaches stdout.
    quiet = cross_validate(spec, X, y, cv_folds=4, seed=0)
    pd.testing.assert_frame_equal(
        quiet.folds.drop(columns="fit_seconds"), result.folds.drop(columns="fit_seconds")
    )
    assert capsys.readouterr().out == ""
