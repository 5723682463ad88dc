"""Model choice, tuning budget, calibration and promotion: all on training rows only."""

import time

import numpy as np
import pandas as pd
import pytest

from affluent_assets.lib.features import CATEGORICAL_FEATURES, FLAG_FEATURES, NUMERIC_FEATURES
from affluent_assets.lib.model_selection import (
    PromotionFloors,
    candidate_specs,
    compare_models,
    decide_promotion,
    sample_xgboost_params,
    summarize_comparison,
    tune_xgboost,
)
from affluent_assets.lib.training import (
    DEFAULT_XGBOOST_PARAMS,
    ModelSpec,
    apply_calibrator,
    fit_calibrator,
    predict_probability,
    train_affluent_model,
)


def synthetic_customers(rows: int, seed: int) -> tuple[pd.DataFrame, pd.Series, np.ndarray]:
    """A feature table whose true P(AFFLUENT) is known: it depends on two columns only."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"customer_key": [f"k{i}" for i in range(rows)]})
    for column in NUMERIC_FEATURES:
        values = rng.integers(0, 2, rows) if column in FLAG_FEATURES else rng.normal(size=rows)
        frame[column] = values.astype("float64")
    for column in CATEGORICAL_FEATURES:
        frame[column] = rng.choice(["A", "B", None], rows)
    logit = -2.0 + 1.5 * frame["num_prd"] + 1.0 * frame["asset_value"]
    truth = 1 / (1 + np.exp(-logit.to_numpy()))
    labels = pd.Series((rng.random(rows) < truth).astype("int64"))
    return frame, labels, truth


def test_calibrator_recovers_known_probabilities():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.01, 0.99, 40_000)
    labels = pd.Series((rng.random(truth.size) < truth).astype("int64"))
    # A raw score that ranks well but is badly over-confident, like a class-weighted model.
    logit = np.log(truth / (1 - truth))
    raw = 1 / (1 + np.exp(-(2.5 * logit + 1.0)))
    fit, check = slice(0, 20_000), slice(20_000, None)
    for method in ("sigmoid", "isotonic"):
        calibrator = fit_calibrator(pd.Series(raw[fit]), labels[fit], method)
        calibrated = apply_calibrator(calibrator, method, raw[check])
        assert np.abs(calibrated - truth[check]).mean() < 0.03, method
    assert np.abs(raw[check] - truth[check]).mean() > 0.08  # it really was miscalibrated


def test_platt_scaling_gives_the_same_bits_as_the_fitted_regression():
    rng = np.random.default_rng(3)
    raw = np.concatenate([[0.0, 1.0, 1e-9, 1 - 1e-9, 0.5], rng.uniform(0, 1, 20_000)])
    labels = pd.Series((rng.random(raw.size) < raw).astype("int64"))
    calibrator = fit_calibrator(pd.Series(raw), labels, "sigmoid")
    logit = np.log(np.clip(raw, 1e-6, 1 - 1e-6) / (1 - np.clip(raw, 1e-6, 1 - 1e-6)))
    expected = calibrator.predict_proba(logit.reshape(-1, 1))[:, 1]
    assert np.array_equal(apply_calibrator(calibrator, "sigmoid", raw), expected)


def test_weighted_xgboost_is_calibrated_back_to_true_probabilities():
    features, labels, _ = synthetic_customers(6000, seed=1)
    fresh, _, truth = synthetic_customers(4000, seed=2)
    spec = ModelSpec("xgboost", class_weighting=True, params={"n_estimators": 120})
    calibrated = train_affluent_model(
        features, labels, spec, target_recall=0.8, seed=0, calibration="sigmoid", cv_folds=3
    )
    uncalibrated = train_affluent_model(
        features, labels, spec, target_recall=0.8, seed=0, calibration="none", cv_folds=3
    )
    error = np.abs(predict_probability(calibrated.model, fresh).to_numpy() - truth).mean()
    raw_error = np.abs(predict_probability(uncalibrated.model, fresh).to_numpy() - truth).mean()
    assert error < 0.05
    assert error < raw_error


def test_unknown_calibration_method_is_refused():
    with pytest.raises(ValueError, match="unknown calibration"):
        fit_calibrator(pd.Series([0.1, 0.9]), pd.Series([0, 1]), "magic")


def test_tuning_candidates_start_with_defaults_and_are_distinct():
    drawn = sample_xgboost_params(9, seed=3)
    assert drawn[0] == {k: DEFAULT_XGBOOST_PARAMS[k] for k in drawn[0]}
    assert len({tuple(sorted(p.items())) for p in drawn}) == 9
    assert drawn == sample_xgboost_params(9, seed=3)


def test_tuning_with_no_budget_keeps_defaults_and_fits_nothing():
    features, labels, _ = synthetic_customers(600, seed=4)
    result = tune_xgboost(features, labels, budget_seconds=0, seed=0)
    assert result.stopped_by_budget and result.trials.empty
    assert result.params == sample_xgboost_params(1, seed=0)[0]


def test_tuning_halves_candidates_on_growing_samples_within_budget():
    features, labels, _ = synthetic_customers(2700, seed=5)
    started = time.perf_counter()
    result = tune_xgboost(features, labels, budget_seconds=120, seed=0, candidates=9, cv_folds=2)
    assert time.perf_counter() - started < 120
    per_rung = result.trials.groupby("rung")["rows"].agg(["size", "first"])
    assert list(per_rung["size"]) == [9, 3]
    assert per_rung["first"].iloc[0] * 3 == pytest.approx(per_rung["first"].iloc[1], rel=0.01)
    best_last_rung = result.trials[result.trials["rung"] == 1].sort_values("cv_pr_auc").iloc[-1]
    assert result.params["max_depth"] == best_last_rung["max_depth"]


def test_comparison_covers_families_and_weighting_and_ranks_by_metric():
    features, labels, _ = synthetic_customers(1500, seed=6)
    specs = candidate_specs({"n_estimators": 60})
    assert {(s.family, s.class_weighting) for s in specs} == {
        (family, weighted)
        for family in ("logistic_regression", "random_forest", "xgboost")
        for weighted in (True, False)
    }
    results = compare_models(specs, features, labels, cv_folds=3, seed=0)
    table = summarize_comparison(results, "pr_auc")
    assert list(table["rank"]) == list(range(1, 7))
    assert table["pr_auc_mean"].is_monotonic_decreasing
    assert table["selected"].sum() == 1 and table.loc[0, "selected"]
    assert all(len(folds) == 3 for folds in table["pr_auc_by_fold"])
    by_brier = summarize_comparison(results, "brier")
    assert by_brier["brier_mean"].is_monotonic_increasing
    with pytest.raises(ValueError, match="selection metric"):
        summarize_comparison(results, "accuracy")


@pytest.mark.parametrize(
    ("challenger", "champion", "tolerance", "promote"),
    [
        (0.60, None, 0.005, True),
        (0.66, 0.65, 0.005, True),
        (0.647, 0.65, 0.005, True),  # worse, but within the tolerance
        (0.64, 0.65, 0.005, False),  # worse by more than the tolerance: champion stays
    ],
)
def test_promotion_keeps_champion_when_challenger_is_worse(
    challenger, champion, tolerance, promote
):
    decision = decide_promotion(challenger, champion, tolerance)
    assert decision.promote is promote
    if champion is not None:
        assert decision.margin == pytest.approx(challenger - champion)
        assert ("not worse" in decision.reason) is promote


def test_floors_name_each_figure_that_misses():
    floors = PromotionFloors(min_pr_auc=0.5, min_recall=0.7, max_brier_score=0.1)
    good = {"pr_auc": 0.66, "recall": 0.80, "brier_score": 0.09}
    assert floors.failures(good) == []
    bad = {"pr_auc": 0.42, "recall": 0.65, "brier_score": 0.12}
    assert floors.failures(bad) == [
        "PR-AUC 0.4200 < floor 0.5000",
        "recall 0.6500 < floor 0.7000",
        "Brier score 0.1200 > ceiling 0.1000",
    ]


def test_a_model_under_a_floor_is_refused_even_as_the_first():
    failures = PromotionFloors(min_pr_auc=0.7).failures(
        {"pr_auc": 0.66, "recall": 0.8, "brier_score": 0.09}
    )
    first = decide_promotion(0.66, None, 0.005, failures)
    assert not first.promote
    assert first.reason == "challenger below the promotion floors: PR-AUC 0.6600 < floor 0.7000"
    assert not decide_promotion(0.99, 0.65, 0.005, failures).promote  # better, still refused


def test_cross_validation_refuses_too_few_affluent_rows():
    features, labels, _ = synthetic_customers(300, seed=8)
    labels[:] = 0
    labels.iloc[:3] = 1
    with pytest.raises(ValueError, match="at least 5 rows of each class.*3 AFFLUENT"):
        compare_models([ModelSpec("logistic_regression")], features, labels, cv_folds=5, seed=0)


def test_tuning_samples_keep_enough_affluent_rows_per_fold():
    features, labels, _ = synthetic_customers(1500, seed=9)
    result = tune_xgboost(features, labels, budget_seconds=120, seed=0, candidates=9, cv_folds=2)
    first_rung = result.trials[result.trials["rung"] == 0]["rows"].iloc[0]
    share_of_positives = first_rung / len(labels) * labels.sum()
    assert share_of_positives >= 2 * 10 - 1  # 10 AFFLUENT rows per fold, 2 folds


# --- progress lines -----------------------------------------------------------------------------


def test_tuning_logs_each_round_and_each_trial_in_order():
    features, labels, _ = synthetic_customers(1500, seed=9)
    heard: list[str] = []
    result = tune_xgboost(
        features, labels, budget_seconds=120, seed=0, candidates=9, cv_folds=2, log=heard.append
    )
    expected = []
    for rung, count in ((1, 9), (2, 3)):
        expected.append(f"tuning round {rung}/2: {count} candidates on ")
        expected += [f"round {rung}/2, candidate {j}/{count} (depth " for j in range(1, count + 1)]
        expected.append(f"tuning round {rung}/2 done: best PR-AUC ")
    assert len(heard) == len(expected)
    assert all(line.startswith(start) for line, start in zip(heard, expected, strict=True))
    # Each trial line carries the score recorded in the trials table, in the same order.
    trial_lines = [line for line in heard if line.startswith("round ")]
    assert [line.split("PR-AUC ")[1].split(" ")[0] for line in trial_lines] == [
        f"{score:.3f}" for score in result.trials["cv_pr_auc"]
    ]
    rows = result.trials.groupby("rung")["rows"].first()
    assert heard[0].endswith(f"({rows[0]:,} rows)") and heard[11].endswith(f"({rows[1]:,} rows)")
    best_last = result.trials[result.trials["rung"] == 1]["cv_pr_auc"].max()
    assert heard[-1].startswith(f"tuning round 2/2 done: best PR-AUC {best_last:.3f} (3 scored")


def test_tuning_logs_where_the_budget_stopped_it():
    features, labels, _ = synthetic_customers(1500, seed=9)
    heard: list[str] = []

    def slow_log(message: str) -> None:
        # Spend the whole budget while the first trial is reported, so the second never starts.
        heard.append(message)
        if "candidate 1/" in message:
            time.sleep(1.1)

    result = tune_xgboost(
        features, labels, budget_seconds=1, seed=0, candidates=9, cv_folds=2, log=slow_log
    )
    assert result.stopped_by_budget and len(result.trials) == 1
    assert heard[0].startswith("tuning round 1/2: 9 candidates on ")
    assert heard[1].startswith("round 1/2, candidate 1/9 (")
    assert heard[2] == "tuning budget of 1 s spent: stopping in round 1/2 after 1 of 9 candidates"
    assert heard[3].startswith("tuning round 1/2 done: best PR-AUC ")
    assert len(heard) == 4


def test_comparison_logs_each_candidate_and_each_fold():
    features, labels, _ = synthetic_customers(1200, seed=10)
    specs = [ModelSpec("logistic_regression", True), ModelSpec("logistic_regression", False)]
    heard: list[str] = []
    results = compare_models(specs, features, labels, cv_folds=3, seed=0, log=heard.append)
    expected = []
    for number, spec in enumerate(specs, start=1):
        folds = results[spec.name].folds["pr_auc"]
        expected.append(f"candidate {number}/2: {spec.name}")
        expected += [
            f"fold {k}/3 of {spec.name}: PR-AUC {folds.iloc[k - 1]:.3f} (" for k in (1, 2, 3)
        ]
        expected.append(
            f"candidate {number}/2 {spec.name}: mean PR-AUC {folds.mean():.3f} over 3 folds ("
        )
    assert len(heard) == len(expected) == 10
    assert all(line.startswith(start) for line, start in zip(heard, expected, strict=True))


def test_without_a_budget_every_round_runs_however_slow_the_trials():
    features, labels, _ = synthetic_customers(1500, seed=9)
    heard: list[str] = []

    def slow_log(message: str) -> None:
        heard.append(message)
        time.sleep(0.05)  # a loaded machine: no wall-clock limit may cut the search short

    result = tune_xgboost(
        features, labels, budget_seconds=None, seed=0, candidates=9, cv_folds=2, log=slow_log
    )
    assert not result.stopped_by_budget
    assert result.trials.groupby("rung").size().tolist() == [9, 3]
    assert not any("budget" in line for line in heard)
    again = tune_xgboost(features, labels, budget_seconds=None, seed=0, candidates=9, cv_folds=2)
    assert again.params == result.params
