"""Seeded demo batches scored in process with a champion: how often the 90% interval of the
estimated precision covers what the batch realized, and how far the estimate and the holdout's
figure fall from it on shifted batches. Used by outcomes_demo.py."""

from __future__ import annotations

import numpy as np
import pandas as pd

from affluent_assets.lib.demo_data import generate_customers
from affluent_assets.lib.estimates import list_estimates
from affluent_assets.lib.evaluation import LIST_MIN_CALLED
from affluent_assets.lib.features import build_features, clean_customers
from affluent_assets.lib.scoring import score_features

FIRST_SEED = 10_000  # far from the training extract's seed (42) and the tests' seeds
SHIFT_FEATURES = ("NUM_PRD", "Asset value", "MTHCASA", "C_AGE")


def score(scorer, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated scores and AFFLUENT labels of one demo batch."""
    clean = clean_customers(frame, "simulated.csv")
    model = scorer.registered
    scores = score_features(
        scorer.model, build_features(clean), model.threshold, model.decile_edges
    )
    return scores["affluent_probability"].to_numpy(), (clean["c_seg"] == "AFFLUENT").to_numpy()


def judged(scorer, p: np.ndarray, y: np.ndarray, cuts=("threshold", "top 500")) -> list[dict]:
    """Estimate, interval, holdout figure and realized precision at the threshold and top 500."""
    table = list_estimates(p, scorer.registered.threshold, scorer.curve, capacities=("500",),
                           min_called=LIST_MIN_CALLED)  # fmt: skip
    order = np.argsort(-p, kind="stable")
    rows = []
    for row, cut in zip(table.itertuples(), cuts, strict=True):
        called = order[: row.flagged]
        rows.append(
            {"cut": cut, "realized": float(y[called].mean()), "flagged": int(row.flagged),
             "estimated": row.estimated_precision, "low": row.precision_low,
             "high": row.precision_high, "holdout": row.holdout_precision}
        )  # fmt: skip
    return rows


def coverage(scorer, rows: int, batches: int) -> dict:
    """Batches of `rows` fresh demo customers (seeds FIRST_SEED...): interval coverage."""
    found = {"threshold": [], "top 500": []}
    for number in range(batches):
        p, y = score(scorer, generate_customers(rows, seed=FIRST_SEED + number))
        for row in judged(scorer, p, y):
            found[row["cut"]].append(row)
    return {"rows": rows, "batches": batches, **{cut: _summary(found[cut]) for cut in found}}


def _summary(rows: list[dict]) -> dict:
    frame = pd.DataFrame(rows)
    covered = (frame["low"] <= frame["realized"]) & (frame["realized"] <= frame["high"])
    return {
        "covered": int(covered.sum()),
        "mean_flagged": round(float(frame["flagged"].mean()), 1),
        "mean_interval_width": round(float((frame["high"] - frame["low"]).mean()), 4),
        "mae_estimate": round(float((frame["estimated"] - frame["realized"]).abs().mean()), 4),
        "mae_holdout": round(float((frame["holdout"] - frame["realized"]).abs().mean()), 4),
        "mean_realized": round(float(frame["realized"].mean()), 4),
        "mean_estimated": round(float(frame["estimated"].mean()), 4),
        "mean_holdout": round(float(frame["holdout"].mean()), 4),
    }


def branch(frame: pd.DataFrame, number: int, rows: int) -> pd.DataFrame:
    """A subpopulation chosen on what the model sees: rows drawn with weight rising (or, every
    other batch, falling) with the rank of one feature, so P(AFFLUENT | features) is unchanged."""
    rng = np.random.default_rng(FIRST_SEED + number)
    feature = SHIFT_FEATURES[number % len(SHIFT_FEATURES)]
    rank = frame[feature].rank(pct=True, na_option="bottom").to_numpy()
    direction = 1 if (number // len(SHIFT_FEATURES)) % 2 == 0 else -1
    weight = np.exp(3.0 * direction * rank)
    picked = rng.choice(len(frame), size=rows, replace=False, p=weight / weight.sum())
    return frame.iloc[np.sort(picked)].reset_index(drop=True)


def label_shift(frame: pd.DataFrame, number: int, rows: int) -> pd.DataFrame:
    """A population with another AFFLUENT share (half or double the demo's): P(AFFLUENT |
    features) changes, so calibrated scores under- or over-state it."""
    rng = np.random.default_rng(FIRST_SEED + number)
    affluent = frame["C_seg"].to_numpy() == "AFFLUENT"
    factor = 2.0 if number % 2 == 0 else 0.5
    weight = np.where(affluent, factor, 1.0)
    picked = rng.choice(len(frame), size=rows, replace=False, p=weight / weight.sum())
    return frame.iloc[np.sort(picked)].reset_index(drop=True)


def shifted(scorer, rows: int, batches: int) -> dict:
    """MAE of estimate and holdout figure against realized precision on shifted batches."""
    found = {}
    for kind, draw in (("covariate_shift", branch), ("label_shift", label_shift)):
        results = {"threshold": [], "top 500": []}
        for number in range(batches):
            pool = generate_customers(4 * rows, seed=FIRST_SEED + 1_000 + number)
            p, y = score(scorer, draw(pool, number, rows))
            for row in judged(scorer, p, y):
                results[row["cut"]].append(row)
        found[kind] = {"rows": rows, "batches": batches,
                       **{cut: _summary(results[cut]) for cut in results}}  # fmt: skip
    return found
