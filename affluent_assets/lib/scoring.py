"""Scoring with a fitted pipeline: probabilities, deciles, the ranked candidate list with
reasons per customer, and the segment profile marketing reads."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from xgboost import XGBClassifier

from affluent_assets.lib.contract import NEGATIVE, POSITIVE, RAW_COLUMNS
from affluent_assets.lib.features import (
    CATEGORICAL_FEATURES,
    MODEL_FEATURES,
    snake_case,
)
from affluent_assets.lib.prepared import Columns, prepared_matrix
from affluent_assets.lib.training import CalibratedModel, assign_decile

if TYPE_CHECKING:
    from affluent_assets.lib.tree_shap import TreeExplainer

REASON_COUNT = 3
# Feature names as the bank knows them (contract spelling) for reason texts.
DISPLAY_NAMES = {snake_case(c): c for c in RAW_COLUMNS} | {"age": "C_AGE"}


def score_features(
    model: CalibratedModel,
    features: Columns,
    threshold: float,
    decile_edges: list[float],
    matrix: np.ndarray | None = None,
) -> pd.DataFrame:
    """customer_key, probability, decile (1 = top) and predicted segment for each row.
    `matrix`: the rows' prepared matrix (float64) when the caller has it already."""
    return pd.DataFrame(feature_scores(model, features, threshold, decile_edges, matrix))


_SEGMENTS = np.asarray([NEGATIVE, POSITIVE], dtype=object)  # by flag: Python's own strings


def feature_scores(
    model: CalibratedModel,
    features: Columns,
    threshold: float,
    decile_edges: list[float],
    matrix: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """`score_features` as NumPy columns, from a feature frame or a dict of its columns."""
    probability = model.predict_proba(features, matrix)[:, 1].astype("float64")
    return {
        "customer_key": np.asarray(features["customer_key"]),
        "affluent_probability": probability,
        "score_decile": assign_decile(probability, decile_edges).to_numpy(),
        "predicted_segment": _SEGMENTS[(probability >= threshold).view("int8")],
    }


def prefer_out_of_fold(
    scored: pd.DataFrame,
    out_of_fold: pd.DataFrame,
    threshold: float,
    decile_edges: list[float],
) -> pd.DataFrame:
    """Training rows take their out-of-fold score (from a fold model that never saw them)
    instead of the final model's in-sample score, which would understate NORMAL training
    customers and push them down the candidate list. `score_source` says which score a row
    carries: `holdout`, `out_of_fold`, or `in_sample` (a training row of another model)."""
    oof = scored["customer_key"].map(out_of_fold.set_index("customer_key")["oof_probability"])
    use_oof = oof.notna() & (scored["split"] == "train")
    probability = scored["affluent_probability"].where(~use_oof, oof).astype("float64")
    return scored.assign(
        affluent_probability=probability,
        score_decile=assign_decile(probability, decile_edges).to_numpy(),
        predicted_segment=np.where(probability >= threshold, POSITIVE, NEGATIVE),
        score_source=np.where(
            scored["split"] == "holdout", "holdout", np.where(use_oof, "out_of_fold", "in_sample")
        ),
    )


def feature_contributions(
    model: CalibratedModel, features: pd.DataFrame, matrix: np.ndarray | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """Per-row contribution of each model feature to the uncalibrated score, one-hot columns
    summed back to their source column, and the base value per row; each row sums to the
    model's raw output. XGBoost: exact tree SHAP in log-odds; logistic regression: coefficient
    x standardized value, in log-odds; random forest: path contributions, in probability.
    XGBoost's tree SHAP comes from lib/tree_shap.py: the same values as the booster's
    `pred_contribs`, several times faster on many rows. `matrix`: the rows' prepared matrix
    (float64) when the caller has it already."""
    kept, grouped, base = contribution_columns(model, features, matrix)
    return pd.DataFrame(grouped, columns=kept, index=features.index), base


def contribution_columns(
    model: CalibratedModel, features: Columns, matrix: np.ndarray | None = None, base: bool = True
) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """`feature_contributions` as arrays: the model features, the contributions (rows x
    features) and the base value per row (None when not asked for and costly: XGBoost)."""
    preprocess = model.pipeline.named_steps["preprocess"]
    estimator = model.pipeline.named_steps["model"]
    transformed = prepared_matrix(model.pipeline, features, "float64") if matrix is None else matrix
    if isinstance(estimator, XGBClassifier):
        per_column, base = _explainer(estimator.get_booster()).contributions(transformed, base)
    elif isinstance(estimator, LogisticRegression):
        per_column = transformed * estimator.coef_[0]
        base = np.full(len(transformed), float(estimator.intercept_[0]))
    else:
        per_column, base = _forest_contributions(estimator, transformed)
    kept, membership = _membership(preprocess)
    return kept, np.asarray(per_column, dtype="float64") @ membership, base


_MEMBERSHIP: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _membership(preprocess) -> tuple[list[str], np.ndarray]:
    """The model features and the 0/1 matrix that sums one-hot columns back to them (column
    order kept), once per fitted preprocessing."""
    if preprocess not in _MEMBERSHIP:
        source = [_source_feature(name) for name in preprocess.get_feature_names_out()]
        kept = [c for c in MODEL_FEATURES if c in source]
        membership = np.asarray([[s == c for c in kept] for s in source], dtype="float64")
        _MEMBERSHIP[preprocess] = (kept, membership)
    return _MEMBERSHIP[preprocess]


_EXPLAINERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _explainer(booster) -> TreeExplainer:
    """One explainer per loaded booster: its tables take about a second to build. Imported
    here: numba costs a landing run's process 0.3 s to import, and its reasons come after its
    scores are queryable."""
    from affluent_assets.lib.tree_shap import TreeExplainer

    if booster not in _EXPLAINERS:
        _EXPLAINERS[booster] = TreeExplainer(booster)
    return _EXPLAINERS[booster]


def warm_explainer(model: CalibratedModel) -> None:
    """Build a booster's explainer tables and load its compiled kernel now (a loaded champion's
    first explanation would otherwise pay about a second for them)."""
    estimator = model.pipeline.named_steps["model"]
    if isinstance(estimator, XGBClassifier):
        explainer = _explainer(estimator.get_booster())
        explainer.contributions(np.zeros((1, explainer.features)))  # loads the compiled kernel


def _forest_contributions(forest, transformed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each split's change in P(AFFLUENT) credited to its feature, averaged over trees."""
    total = np.zeros_like(transformed)
    base = 0.0
    for tree_model in forest.estimators_:
        tree = tree_model.tree_
        value = tree.value[:, 0, :]
        probability = value[:, 1] / value.sum(axis=1)
        parent = np.full(tree.node_count, -1)
        for children in (tree.children_left, tree.children_right):
            internal = np.flatnonzero(children >= 0)
            parent[children[internal]] = internal
        child = np.flatnonzero(parent >= 0)
        delta = np.zeros((tree.node_count, transformed.shape[1]))
        delta[child, tree.feature[parent[child]]] = probability[child] - probability[parent[child]]
        total += tree_model.decision_path(transformed.astype("float32")) @ delta
        base += probability[0]
    trees = len(forest.estimators_)
    return total / trees, np.full(len(transformed), base / trees)


def global_importance(model: CalibratedModel, features: pd.DataFrame) -> pd.Series:
    """Mean absolute contribution of each feature over `features` (pass training rows),
    labelled as the bank knows them."""
    contributions, _ = feature_contributions(model, features)
    importance = contributions.abs().mean()
    importance.index = [DISPLAY_NAMES.get(name, name) for name in importance.index]
    return importance.sort_values(ascending=False)


def _source_feature(transformed_name: str) -> str:
    block, _, rest = transformed_name.partition("__")
    if block == "categorical":
        return next(c for c in CATEGORICAL_FEATURES if rest.startswith(c + "_"))
    return rest


def rank_candidates(scored: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """NORMAL customers scored at or above the threshold, best first, ranked 1..n."""
    candidates = scored[
        (scored["c_seg"] == NEGATIVE) & (scored["affluent_probability"] >= threshold)
    ]
    candidates = candidates.sort_values(
        ["affluent_probability", "customer_key"], ascending=[False, True]
    )
    candidates = candidates.reset_index(drop=True)
    candidates.insert(0, "candidate_rank", np.arange(1, len(candidates) + 1, dtype="int64"))
    return candidates


AGE_BANDS = [
    (18, 30, "18-29"),
    (30, 40, "30-39"),
    (40, 50, "40-49"),
    (50, 60, "50-59"),
    (60, 70, "60-69"),
    (70, 101, "70+"),
]
PROFILE_MEDIANS = [
    "mthcasa",
    "mthtd",
    "asset_value",
    "total_deposits",
    "ut_ave",
    "cc_lmt",
    "ann_trn_amt",
    "num_prd",
]
PROFILE_MIX = ["gn_occ", "c_hse", "c_edu", "age_band"]


def age_band(age: pd.Series) -> pd.Series:
    bands = pd.Series("unknown", index=age.index, dtype=object)
    for low, high, name in AGE_BANDS:
        bands[(age >= low) & (age < high)] = name
    return bands


def profile_segments(customers: pd.DataFrame, candidate_keys: pd.Series) -> pd.DataFrame:
    """Candidates against AFFLUENT and against the NORMAL customers not flagged: median balances,
    product counts, and the mix of occupation, housing, education and age band.

    `customers` holds clean columns plus `age` (the cleaned age). Long format: one row per
    segment, measure and level, so analysts can pivot it any way in SQL."""
    is_candidate = customers["customer_key"].isin(set(candidate_keys))
    groups = {
        "hidden_affluent_candidates": customers[is_candidate],
        "affluent": customers[customers["c_seg"] == POSITIVE],
        "normal_not_flagged": customers[(customers["c_seg"] == NEGATIVE) & ~is_candidate],
    }
    rows = []
    for segment, group in groups.items():
        size = len(group)
        rows.append((segment, "customers", "count", "", float(size), size))
        rows.append(
            (
                segment,
                "num_prd",
                "mean",
                "",
                float(group["num_prd"].mean()) if size else np.nan,
                size,
            )
        )
        for column in PROFILE_MEDIANS:
            rows.append(
                (
                    segment,
                    column,
                    "median",
                    "",
                    float(group[column].median()) if size else np.nan,
                    size,
                )
            )
            rows.append(
                (
                    segment,
                    column,
                    "share_present",
                    "",
                    float(group[column].notna().mean()) if size else np.nan,
                    size,
                )
            )
        mixes = group[PROFILE_MIX[:-1]].fillna("(blank)").assign(age_band=age_band(group["age"]))
        for column in PROFILE_MIX:
            shares = mixes[column].value_counts(normalize=True)
            rows.extend(
                (segment, column, "share", str(level), float(share), size)
                for level, share in shares.items()
            )
    return pd.DataFrame(
        rows, columns=["segment", "feature", "measure", "level", "value", "segment_customers"]
    )
