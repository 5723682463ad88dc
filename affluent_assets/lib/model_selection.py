"""Choosing the model on training rows only: a time-bounded XGBoost search by successive
halving, then a cross-validated comparison of model families with and without class weights."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from affluent_assets.lib.features import MODEL_FEATURES
from affluent_assets.lib.training import (
    DEFAULT_XGBOOST_PARAMS,
    FAMILIES,
    CrossValidation,
    ModelSpec,
    cross_validate,
    no_log,
)

SELECTION_METRICS = ("pr_auc", "roc_auc", "brier")
MIN_POSITIVES_PER_FOLD = 10
XGBOOST_SPACE = {
    "max_depth": [3, 4, 5, 6],
    "learning_rate": [0.03, 0.05, 0.1],
    "n_estimators": [200, 400, 600],
    "min_child_weight": [1.0, 5.0, 10.0],
    "subsample": [0.7, 0.85, 1.0],
    "colsample_bytree": [0.6, 0.8, 1.0],
}


@dataclass
class TuningResult:
    params: dict
    trials: pd.DataFrame
    seconds: float
    stopped_by_budget: bool


def sample_xgboost_params(count: int, seed: int) -> list[dict]:
    """The defaults first (so tuning can only keep or beat them), then seeded random draws."""
    rng = np.random.default_rng(seed)
    defaults = {k: DEFAULT_XGBOOST_PARAMS[k] for k in XGBOOST_SPACE}
    drawn, seen = [defaults], {tuple(sorted(defaults.items()))}
    while len(drawn) < count and len(seen) < np.prod([len(v) for v in XGBOOST_SPACE.values()]):
        params = {k: values[rng.integers(len(values))] for k, values in XGBOOST_SPACE.items()}
        key = tuple(sorted(params.items()))
        if key not in seen:
            seen.add(key)
            drawn.append(
                {k: (float(v) if isinstance(v, float) else int(v)) for k, v in params.items()}
            )
    return drawn


def tune_xgboost(
    X: pd.DataFrame,
    y: pd.Series,
    budget_seconds: float | None,
    seed: int,
    candidates: int = 27,
    cv_folds: int = 3,
    halving_factor: int = 3,
    log: Callable[[str], None] = no_log,
) -> TuningResult:
    """Successive halving: every candidate on a small stratified sample, the best third on a
    sample three times larger, and so on, scored by cross-validated PR-AUC (3-fold). With
    `budget_seconds`, stops starting new fits once it is spent and keeps the best of the largest
    sample reached, so the result then depends on the machine's speed and load; None runs every
    round, the same on any machine. `log` hears each round as it starts and ends, each trial,
    and a budget stop."""
    started = time.perf_counter()
    deadline = started + (math.inf if budget_seconds is None else budget_seconds)
    pool = sample_xgboost_params(candidates, seed)
    # With 27 candidates and factor 3: 27 on 1/27 of the rows, 9 on 1/9, 3 on 1/3; the one
    # left needs no further round.
    rungs = max(1, int(np.ceil(np.log(candidates) / np.log(halving_factor) - 1e-9)))
    # Without any trial the defaults stay: they lead the pool, which only shrinks after a trial.
    trials, stopped, best_params = [], False, pool[0]
    # A rung's sample must hold enough AFFLUENT rows for every fold to score PR-AUC.
    smallest_share = MIN_POSITIVES_PER_FOLD * cv_folds / max(1, int(y.sum()))
    for rung in range(rungs):
        share = min(1.0, max(smallest_share, float(halving_factor) ** (rung - rungs)))
        X_rung, y_rung = _stratified_sample(X, y, share, seed)
        label = f"round {rung + 1}/{rungs}"
        log(
            f"tuning {label}: {len(pool)} candidates on {_percent(share)} of rows "
            f"({len(y_rung):,} rows)"
        )
        scored, stopped = _score_round(pool, X_rung, y_rung, cv_folds, seed, deadline, label, log)
        trials += [
            {"rung": rung, "rows": len(y_rung), **params, "cv_pr_auc": pr_auc}
            for pr_auc, _, params in scored
        ]
        if stopped:
            log(
                f"tuning budget of {budget_seconds:.0f} s spent: stopping in {label} after "
                f"{len(scored)} of {len(pool)} candidates"
            )
        if scored:
            scored.sort(key=lambda item: (-item[0], item[1]))
            best_params = scored[0][2]
            log(
                f"tuning {label} done: best PR-AUC {scored[0][0]:.3f} ({len(scored)} scored, "
                f"{time.perf_counter() - started:.1f} s so far)"
            )
            pool = [params for _, _, params in scored[: max(1, len(scored) // halving_factor)]]
        if stopped:
            break
    return TuningResult(
        params=best_params,
        trials=pd.DataFrame(trials),
        seconds=time.perf_counter() - started,
        stopped_by_budget=stopped,
    )


def _score_round(
    pool: list[dict],
    X: pd.DataFrame,
    y: pd.Series,
    cv_folds: int,
    seed: int,
    deadline: float,
    label: str,
    log: Callable[[str], None],
) -> tuple[list[tuple[float, int, dict]], bool]:
    """(PR-AUC, index, params) of each candidate in pool order, and whether the deadline
    stopped the round before every candidate was scored."""
    scored = []
    for index, params in enumerate(pool):
        trial_started = time.perf_counter()
        if trial_started > deadline:
            return scored, True
        result = cross_validate(ModelSpec("xgboost", True, params), X, y, cv_folds, seed)
        pr_auc = float(result.folds["pr_auc"].mean())
        scored.append((pr_auc, index, params))
        log(
            f"{label}, candidate {index + 1}/{len(pool)} ({_brief(params)}): "
            f"PR-AUC {pr_auc:.3f} ({time.perf_counter() - trial_started:.1f} s)"
        )
    return scored, False


def _brief(params: dict) -> str:
    # The three parameters that move XGBoost most; the full set is in the trials table.
    return (
        f"depth {params['max_depth']}, lr {params['learning_rate']:g}, "
        f"{params['n_estimators']} trees"
    )


def _percent(share: float) -> str:
    # The first rounds use a few percent of the rows: keep one decimal there.
    return f"{share:.0%}" if share >= 0.1 else f"{share:.1%}"


def _stratified_sample(X: pd.DataFrame, y: pd.Series, share: float, seed: int):
    if share >= 1.0:
        return X, y
    X_part, _, y_part, _ = train_test_split(X, y, train_size=share, stratify=y, random_state=seed)
    return X_part, y_part


def candidate_specs(xgboost_params: dict) -> list[ModelSpec]:
    """A logistic-regression baseline, a random forest and XGBoost, each with and without
    class weights (imbalance handling is compared inside the folds, like everything else)."""
    return [
        ModelSpec(family, weighted, xgboost_params if family == "xgboost" else {})
        for family in FAMILIES
        for weighted in (True, False)
    ]


def compare_models(
    specs: list[ModelSpec],
    features: pd.DataFrame,
    labels: pd.Series,
    cv_folds: int,
    seed: int,
    log: Callable[[str], None] = no_log,
) -> dict[str, CrossValidation]:
    """Each candidate cross-validated on the same stratified folds of the training rows;
    `log` hears each candidate as it starts, each of its folds, and its mean."""
    X = features[MODEL_FEATURES]
    y = labels.astype("int64")
    results = {}
    for number, spec in enumerate(specs, start=1):
        started = time.perf_counter()
        log(f"candidate {number}/{len(specs)}: {spec.name}")
        result = cross_validate(spec, X, y, cv_folds, seed, log)
        log(
            f"candidate {number}/{len(specs)} {spec.name}: mean PR-AUC "
            f"{result.folds['pr_auc'].mean():.3f} over {cv_folds} folds "
            f"({time.perf_counter() - started:.1f} s)"
        )
        results[spec.name] = result
    return results


def summarize_comparison(results: dict[str, CrossValidation], metric: str) -> pd.DataFrame:
    """One row per candidate: fold figures, mean and spread, fit time, rank by `metric`
    (higher is better, except Brier score)."""
    if metric not in SELECTION_METRICS:
        raise ValueError(
            f"unknown selection metric {metric!r}; expected one of {SELECTION_METRICS}"
        )
    rows = []
    for name, result in results.items():
        folds = result.folds
        row = {
            "model": name,
            "family": result.spec.family,
            "class_weighting": result.spec.class_weighting,
            "folds": len(folds),
        }
        for column in ("pr_auc", "roc_auc", "brier"):
            row[f"{column}_mean"] = float(folds[column].mean())
            row[f"{column}_std"] = float(folds[column].std(ddof=1)) if len(folds) > 1 else 0.0
            row[f"{column}_by_fold"] = [round(float(v), 5) for v in folds[column]]
        row["fit_seconds_mean"] = float(folds["fit_seconds"].mean())
        rows.append(row)
    table = pd.DataFrame(rows)
    ascending = metric == "brier"
    table = table.sort_values(f"{metric}_mean", ascending=ascending, kind="stable").reset_index(
        drop=True
    )
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table["selected"] = table["rank"] == 1
    table["selection_metric"] = metric
    return table


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str
    challenger_pr_auc: float
    champion_pr_auc: float | None
    tolerance: float

    @property
    def margin(self) -> float | None:
        """Challenger minus champion holdout PR-AUC (positive: the challenger is better)."""
        if self.champion_pr_auc is None:
            return None
        return self.challenger_pr_auc - self.champion_pr_auc


@dataclass(frozen=True)
class PromotionFloors:
    """Absolute holdout figures any model must reach to score customers, the first included."""

    min_pr_auc: float = 0.40
    min_recall: float = 0.60  # at the model's own threshold
    max_brier_score: float = 0.20  # mean squared error of the probabilities: calibration

    def failures(self, metrics) -> list[str]:
        """Each floor the holdout figures miss, in words; empty when all are reached."""
        found = []
        if metrics["pr_auc"] < self.min_pr_auc:
            found.append(f"PR-AUC {metrics['pr_auc']:.4f} < floor {self.min_pr_auc:.4f}")
        if metrics["recall"] < self.min_recall:
            found.append(f"recall {metrics['recall']:.4f} < floor {self.min_recall:.4f}")
        if metrics["brier_score"] > self.max_brier_score:
            found.append(
                f"Brier score {metrics['brier_score']:.4f} > ceiling {self.max_brier_score:.4f}"
            )
        return found


def decide_promotion(
    challenger_pr_auc: float,
    champion_pr_auc: float | None,
    tolerance: float,
    floor_failures: list[str] | None = None,
) -> PromotionDecision:
    """The challenger becomes champion if it reaches every floor (`floor_failures` empty) and
    its holdout PR-AUC is not worse than the champion's (on the same holdout rows) by more than
    `tolerance`."""
    if floor_failures:
        reason = "challenger below the promotion floors: " + "; ".join(floor_failures)
        return PromotionDecision(False, reason, challenger_pr_auc, champion_pr_auc, tolerance)
    if champion_pr_auc is None:
        return PromotionDecision(True, "no champion yet", challenger_pr_auc, None, tolerance)
    promote = challenger_pr_auc >= champion_pr_auc - tolerance
    verb = "not worse than" if promote else "worse than"
    reason = (
        f"challenger PR-AUC {challenger_pr_auc:.4f} is {verb} champion {champion_pr_auc:.4f} "
        f"within tolerance {tolerance:.4f} (difference {challenger_pr_auc - champion_pr_auc:+.4f})"
    )
    return PromotionDecision(promote, reason, challenger_pr_auc, champion_pr_auc, tolerance)
