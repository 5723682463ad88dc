"""How the platform trains, as one plain function a notebook can call: on training rows only,
a time-bounded XGBoost search, a cross-validated comparison of the candidate families (with and
without class weights), then the chosen one calibrated on its out-of-fold predictions, given its
threshold for the target recall and refitted on all training rows. The Dagster asset only logs
the result to MLflow and writes its tables."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from affluent_assets.lib import evaluation
from affluent_assets.lib.model_selection import (
    TuningResult,
    candidate_specs,
    compare_models,
    summarize_comparison,
    tune_xgboost,
)
from affluent_assets.lib.registry import RegisteredModel
from affluent_assets.lib.scoring import global_importance
from affluent_assets.lib.training import (
    DEFAULT_XGBOOST_PARAMS,
    FAMILIES,
    TrainedModel,
    no_log,
    train_affluent_model,
)

IMPORTANCE_SAMPLE = 3000


@dataclass(frozen=True)
class TrainingOptions:
    target_recall: float = 0.80
    cv_folds: int = 5
    selection_metric: str = "pr_auc"
    families: tuple[str, ...] = tuple(FAMILIES)
    # None: every round of the search, so the same data give the same model on any machine.
    tuning_budget_seconds: float | None = None
    tuning_candidates: int = 27
    calibration: str = "sigmoid"
    seed: int = 42


@dataclass(frozen=True)
class TrainingOutcome:
    """Everything one training produced: the search, the comparison, the chosen candidate's
    cross-validation, the fitted model with its threshold, its out-of-fold figures and its
    global feature importance."""

    tuning: TuningResult
    results: dict
    comparison: pd.DataFrame
    chosen: object  # the chosen candidate's cross-validation result
    trained: TrainedModel
    oof_metrics: dict[str, float]
    importance: pd.Series

    def run_params(self, options: TrainingOptions) -> dict:
        """What the MLflow run records as parameters."""
        return {
            **self.trained.params,
            "target_recall": options.target_recall,
            "threshold_policy": self.trained.threshold.policy,
            "selection_metric": options.selection_metric,
            "tuning_budget_seconds": options.tuning_budget_seconds or "none",
        }

    def run_metrics(self) -> dict[str, float]:
        return {
            **{f"cv_{k}": v for k, v in self.oof_metrics.items()},
            "tuning_seconds": self.tuning.seconds,
        }

    def comparison_table(self, run_id: str) -> pd.DataFrame:
        """The comparison as stored: fold figures and params as JSON text, the MLflow run."""
        comparison = self.comparison
        return comparison.assign(
            **{c: comparison[c].map(json.dumps) for c in comparison if c.endswith("_by_fold")},
            params=[json.dumps(self.results[m].spec.params) for m in comparison["model"]],
            mlflow_run_id=run_id,
        )

    def model_record(
        self, registered: RegisteredModel, options: TrainingOptions, labels: pd.Series
    ) -> dict:
        """The `affluent_model` table's row for the version registered from this training
        (`labels`: the training rows' labels)."""
        choice, spec, oof = self.trained.threshold, self.chosen.spec, self.oof_metrics
        params = {**DEFAULT_XGBOOST_PARAMS, **self.tuning.params}
        return {
            "model_name": registered.name,
            "model_version": registered.version,
            "mlflow_run_id": registered.run_id,
            "trained_at": datetime.now(UTC).replace(tzinfo=None),
            "model_family": spec.family,
            "class_weighting": spec.class_weighting,
            "calibration": options.calibration,
            "threshold": choice.threshold,
            "threshold_policy": choice.policy,
            "target_recall": choice.target,
            "cv_recall_at_threshold": choice.recall,
            "cv_precision_at_threshold": choice.precision,
            "cv_flagged_share": choice.flagged_share,
            "cv_roc_auc": oof["roc_auc"],
            "cv_pr_auc": oof["pr_auc"],
            "training_rows": len(labels),
            "training_affluent": int(labels.sum()),
            "decile_edges": json.dumps(self.trained.decile_edges),
            "params": json.dumps(params if spec.family == "xgboost" else spec.params),
        }


def train_platform_model(
    features: pd.DataFrame,
    labels: pd.Series,
    options: TrainingOptions,
    log: Callable[[str], None] = no_log,
) -> TrainingOutcome:
    """Train exactly as the platform does, on these (training) rows only; `log` hears each
    phase as it starts and ends (search, comparison, final fit) and, inside the long ones,
    each tuning round and trial, each compared candidate and each of its folds."""
    if "xgboost" in options.families:
        budget = options.tuning_budget_seconds
        limit = "with no time limit" if budget is None else f"for up to {budget:.0f} s"
        log(f"tuning XGBoost {limit}")
        tuning = tune_xgboost(
            features, labels, options.tuning_budget_seconds, options.seed,
            candidates=options.tuning_candidates, log=log,
        )  # fmt: skip
        log(f"tuning done: {len(tuning.trials)} trials in {tuning.seconds:.1f} s")
    else:
        tuning = TuningResult(
            params={}, trials=pd.DataFrame(), seconds=0.0, stopped_by_budget=False
        )
    specs = [s for s in candidate_specs(tuning.params) if s.family in options.families]
    log(f"comparing {len(specs)} candidates by {options.cv_folds}-fold cross-validation")
    results = compare_models(specs, features, labels, options.cv_folds, options.seed, log)
    comparison = summarize_comparison(results, options.selection_metric)
    chosen = results[comparison.loc[0, "model"]]
    log(f"chose {chosen.spec.name} by {options.selection_metric}; fitting on all training rows")
    trained = train_affluent_model(
        features, labels, chosen.spec, options.target_recall, options.seed,
        calibration=options.calibration, cross_validation=chosen,
    )  # fmt: skip
    threshold = trained.threshold.threshold
    oof = evaluation.classification_metrics(labels, trained.oof_probability, threshold)
    importance = global_importance(trained.model, features.head(IMPORTANCE_SAMPLE))
    return TrainingOutcome(tuning, results, comparison, chosen, trained, oof, importance)
