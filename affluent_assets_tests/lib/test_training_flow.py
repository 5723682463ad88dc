"""The platform's training flow called as a notebook would: train rows in, everything the asset
logs and writes out, each phase reported as it goes."""

from affluent_assets.lib.demo_data import generate_customers
from affluent_assets.lib.features import build_features, clean_customers, label_vector
from affluent_assets.lib.training import predict_probability
from affluent_assets.lib.training_flow import TrainingOptions, train_platform_model


def test_a_notebook_trains_exactly_as_the_platform_does():
    clean = clean_customers(generate_customers(1200, seed=17), "demo")
    features, labels = build_features(clean), label_vector(clean)
    heard: list[str] = []
    options = TrainingOptions(
        families=("logistic_regression", "xgboost"), cv_folds=3, tuning_budget_seconds=2,
        tuning_candidates=3, seed=3,
    )  # fmt: skip
    outcome = train_platform_model(features, labels, options, heard.append)
    tuned = heard.index(next(line for line in heard if line.startswith("tuning done")))
    assert heard[0] == "tuning XGBoost for up to 2 s"
    # One round of 3 candidates; the 2 s budget may cut it short, so count what was tried.
    assert heard[1] == "tuning round 1/1: 3 candidates on 33% of rows (400 rows)"
    trial_lines = [line for line in heard[:tuned] if line.startswith("round 1/1, candidate ")]
    assert len(trial_lines) == len(outcome.tuning.trials) > 0
    assert heard[tuned + 1] == "comparing 4 candidates by 3-fold cross-validation"
    # Per candidate: its start, exactly one line per fold, its mean; then the choice.
    compared = heard[tuned + 2 : -1]
    assert len(compared) == 4 * (1 + 3 + 1)
    for number, block in enumerate(zip(*[iter(compared)] * 5, strict=True), start=1):
        name = block[0].split(": ")[1]
        assert block[0] == f"candidate {number}/4: {name}"
        assert [line.split(":")[0] for line in block[1:4]] == [
            f"fold {k}/3 of {name}" for k in (1, 2, 3)
        ]
        assert block[4].startswith(f"candidate {number}/4 {name}: mean PR-AUC ")
    assert heard[-1].startswith(f"chose {outcome.chosen.spec.name} by pr_auc")
    assert len(outcome.comparison) == 4 and outcome.comparison.loc[0, "rank"] == 1
    assert outcome.comparison.loc[0, "model"] == outcome.chosen.spec.name
    # The threshold reaches the target recall on out-of-fold rows, as the asset records.
    assert outcome.oof_metrics["recall"] >= options.target_recall - 1e-9
    assert outcome.oof_metrics["threshold"] == outcome.trained.threshold.threshold
    scores = predict_probability(outcome.trained.model, features.head(20))
    assert scores.between(0, 1).all() and len(outcome.importance) > 0
