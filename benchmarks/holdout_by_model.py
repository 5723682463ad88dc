"""Report: cross-validated (training rows) and holdout figures of every compared candidate on
the default demo extract. The platform chooses by cross-validation only; this script fits each
candidate on the training rows afterwards to show how each would have done on the holdout.

    .venv/bin/python benchmarks/holdout_by_model.py

Writes benchmarks/results/holdout_by_model.json.
"""

from report import write_report  # benchmarks/report.py (scripts run from this folder)

from affluent_assets.lib.demo_data import generate_customers
from affluent_assets.lib.evaluation import classification_metrics
from affluent_assets.lib.features import build_features, clean_customers, label_vector
from affluent_assets.lib.model_selection import (
    candidate_specs,
    compare_models,
    summarize_comparison,
    tune_xgboost,
)
from affluent_assets.lib.training import predict_probability, split_customers, train_affluent_model

SEED = 42


def main() -> None:
    clean = clean_customers(generate_customers(seed=SEED), "demo")
    features, labels = build_features(clean), label_vector(clean)
    split = split_customers(clean["customer_key"], labels, 0.3, SEED)
    train = (split["split"] == "train").to_numpy()
    train_x, train_y = features[train], labels[train]
    tuning = tune_xgboost(train_x, train_y, budget_seconds=45, seed=SEED, candidates=27)
    results = compare_models(candidate_specs(tuning.params), train_x, train_y, 5, SEED)
    summary = summarize_comparison(results, "pr_auc")
    rows = []
    for record in summary.to_dict("records"):
        result = results[record["model"]]
        trained = train_affluent_model(
            train_x, train_y, result.spec, 0.8, SEED, cross_validation=result
        )
        scores = predict_probability(trained.model, features[~train])
        holdout = classification_metrics(labels[~train], scores, trained.threshold.threshold)
        rows.append(
            {
                "model": record["model"],
                "cv_rank": record["rank"],
                "cv_pr_auc": f"{record['pr_auc_mean']:.3f} ± {record['pr_auc_std']:.3f}",
                "cv_roc_auc": f"{record['roc_auc_mean']:.3f} ± {record['roc_auc_std']:.3f}",
                "cv_brier": round(record["brier_mean"], 4),
                "fit_seconds": round(record["fit_seconds_mean"], 2),
                **{
                    f"holdout_{k}": round(holdout[k], 4)
                    for k in ("roc_auc", "pr_auc", "brier_score", "recall", "precision", "f1")
                },
            }
        )
    report = {
        "rows": len(clean),
        "tuned_xgboost_params": tuning.params,
        "tuning_seconds": round(tuning.seconds, 1),
        "models": rows,
    }
    write_report("holdout_by_model", report)


if __name__ == "__main__":
    main()
