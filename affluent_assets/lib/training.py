"""Model training: candidate pipelines (imputation + encoding + estimator) so that fitted
preprocessing travels with the model; cross-validation on training rows only; calibration
and the threshold fitted on out-of-fold predictions of training rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    precision_recall_curve,
    roc_auc_score,
)
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from xgboost import XGBClassifier

from affluent_assets.lib.features import CATEGORICAL_FEATURES, MODEL_FEATURES, NUMERIC_FEATURES
from affluent_assets.lib.prepared import pipeline_probability

MISSING_LEVEL = "MISSING"
FAMILIES = ("logistic_regression", "random_forest", "xgboost")
CALIBRATION_METHODS = ("sigmoid", "isotonic", "none")

DEFAULT_XGBOOST_PARAMS = {
    "n_estimators": 400,
    "max_depth": 4,
    "learning_rate": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 5.0,
    "reg_lambda": 1.0,
}
RANDOM_FOREST_PARAMS = {
    "n_estimators": 150,
    "max_depth": 12,
    "min_samples_leaf": 5,
    "max_samples": 0.5,
}


def no_log(message: str) -> None:
    """The default progress sink: notebooks and tests stay quiet unless they pass `log`."""


@dataclass(frozen=True)
class ModelSpec:
    """One candidate: a model family, whether the classes are weighted, and its parameters."""

    family: str
    class_weighting: bool = True
    params: dict = field(default_factory=dict, hash=False)

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"unknown model family {self.family!r}; expected one of {FAMILIES}")

    @property
    def name(self) -> str:
        return f"{self.family}_{'weighted' if self.class_weighting else 'unweighted'}"


@dataclass(frozen=True)
class ThresholdChoice:
    """The operating point and what it implies, all measured on out-of-fold training rows."""

    threshold: float
    policy: str
    target: float
    recall: float
    precision: float
    flagged_share: float


def split_customers(
    customer_keys: pd.Series, labels: pd.Series, holdout_fraction: float, seed: int
) -> pd.DataFrame:
    """Stratified, seeded train/holdout assignment, kept as data so all steps use the same rows."""
    train_keys, _ = train_test_split(
        customer_keys, test_size=holdout_fraction, stratify=labels, random_state=seed
    )
    split = np.where(customer_keys.isin(set(train_keys)), "train", "holdout")
    return pd.DataFrame(
        {"customer_key": customer_keys.to_numpy(), "is_affluent": labels.to_numpy(), "split": split}
    )


def _signed_log1p(values):
    # Balances span six orders of magnitude and can be negative; a linear model needs them tamed.
    return np.sign(values) * np.log1p(np.abs(values))


def build_preprocess(family: str) -> ColumnTransformer:
    """Median imputation for numbers (plus log and scaling for the linear model), a MISSING
    level and one-hot for text. Rare levels (e.g. one OFFICE in 66k rows) share an
    "infrequent" column; levels never seen in training are ignored at scoring time."""
    numeric_steps = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
    if family == "logistic_regression":
        numeric_steps += [
            ("log", FunctionTransformer(_signed_log1p, feature_names_out="one-to-one")),
            ("scale", StandardScaler()),
        ]
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_LEVEL)),
            (
                "encode",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist", min_frequency=20, sparse_output=False
                ),
            ),
        ]
    )
    return ColumnTransformer(
        [
            ("numeric", Pipeline(numeric_steps), NUMERIC_FEATURES),
            ("categorical", categorical, CATEGORICAL_FEATURES),
        ]
    )


def build_pipeline(
    spec: ModelSpec, scale_pos_weight: float, seed: int, n_jobs: int = 2
) -> Pipeline:
    """Preprocessing and estimator of one candidate. Class weighting uses the NORMAL/AFFLUENT
    ratio of the rows it is fitted on (passed in, so it comes from training rows only)."""
    if spec.family == "xgboost":
        estimator = XGBClassifier(
            **{**DEFAULT_XGBOOST_PARAMS, **spec.params},
            objective="binary:logistic",
            tree_method="hist",
            scale_pos_weight=scale_pos_weight if spec.class_weighting else 1.0,
            random_state=seed,
            n_jobs=n_jobs,
        )
    elif spec.family == "random_forest":
        estimator = RandomForestClassifier(
            **{**RANDOM_FOREST_PARAMS, **spec.params},
            class_weight="balanced" if spec.class_weighting else None,
            random_state=seed,
            n_jobs=n_jobs,
        )
    else:
        estimator = LogisticRegression(
            **{"C": 1.0, "max_iter": 2000, **spec.params},
            class_weight="balanced" if spec.class_weighting else None,
        )
    return Pipeline([("preprocess", build_preprocess(spec.family)), ("model", estimator)])


def positive_weight(labels: pd.Series) -> float:
    """NORMAL/AFFLUENT ratio; refuses a single-class sample, which no classifier can learn from."""
    positives = int(labels.sum())
    if positives == 0 or positives == len(labels):
        raise ValueError("training rows hold only one class; cannot train a classifier")
    return (len(labels) - positives) / positives


@dataclass
class CrossValidation:
    """Per-fold figures and out-of-fold probabilities of one candidate on training rows."""

    spec: ModelSpec
    folds: pd.DataFrame
    oof_probability: pd.Series


def cross_validate(
    spec: ModelSpec,
    X: pd.DataFrame,
    y: pd.Series,
    cv_folds: int,
    seed: int,
    log: Callable[[str], None] = no_log,
) -> CrossValidation:
    """Stratified k-fold on the rows given; each fold's weighting and preprocessing are fitted
    on that fold's training part only. `log` hears each fold's PR-AUC and time as it ends."""
    positives = int(y.sum())
    if min(positives, len(y) - positives) < cv_folds:
        raise ValueError(
            f"{cv_folds}-fold cross-validation needs at least {cv_folds} rows of each class; "
            f"the training rows hold {positives} AFFLUENT and {len(y) - positives} NORMAL"
        )
    splitter = StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=seed)
    oof = np.zeros(len(y), dtype="float64")
    rows = []
    for fold, (fit_idx, val_idx) in enumerate(splitter.split(X, y), start=1):
        started = time.perf_counter()
        y_fit = y.iloc[fit_idx]
        pipeline = build_pipeline(spec, positive_weight(y_fit), seed)
        pipeline.fit(X.iloc[fit_idx], y_fit)
        fit_seconds = time.perf_counter() - started
        oof[val_idx] = pipeline.predict_proba(X.iloc[val_idx])[:, 1]
        y_val = y.iloc[val_idx]
        rows.append(
            {
                "fold": fold,
                "pr_auc": average_precision_score(y_val, oof[val_idx]),
                "roc_auc": roc_auc_score(y_val, oof[val_idx]),
                "brier": brier_score_loss(y_val, oof[val_idx]),
                "fit_seconds": fit_seconds,
            }
        )
        log(
            f"fold {fold}/{cv_folds} of {spec.name}: PR-AUC {rows[-1]['pr_auc']:.3f} "
            f"({time.perf_counter() - started:.1f} s)"
        )
    return CrossValidation(spec, pd.DataFrame(rows), pd.Series(oof, index=X.index))


class CalibratedModel(BaseEstimator, ClassifierMixin):
    """A fitted pipeline whose probabilities pass through a calibrator fitted on out-of-fold
    predictions of training rows, so that a score of 0.4 means about 40% are AFFLUENT."""

    def __init__(self, pipeline: Pipeline, calibrator=None, method: str = "none"):
        self.pipeline = pipeline
        self.calibrator = calibrator
        self.method = method
        self.classes_ = np.array([0, 1])

    def raw_probability(self, X: pd.DataFrame, matrix: np.ndarray | None = None) -> np.ndarray:
        # The fitted pipeline on a prepared matrix: same transformers, without encoding every
        # row's text one by one (see lib/prepared.py).
        return pipeline_probability(self.pipeline, X, matrix)

    def predict_proba(self, X: pd.DataFrame, matrix: np.ndarray | None = None) -> np.ndarray:
        """`matrix`: X's prepared matrix (float64), when the caller has built it already."""
        raw = self.raw_probability(X, matrix)
        calibrated = apply_calibrator(self.calibrator, self.method, raw)
        return np.column_stack([1 - calibrated, calibrated])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype("int64")


def _logit(probability: np.ndarray) -> np.ndarray:
    clipped = np.clip(np.asarray(probability, dtype="float64"), 1e-6, 1 - 1e-6)
    return np.log(clipped / (1 - clipped)).reshape(-1, 1)


def fit_calibrator(raw_probability: pd.Series, y: pd.Series, method: str):
    """Platt scaling on the log-odds (`sigmoid`, keeps the ranking strictly) or isotonic
    regression; fit it on out-of-fold probabilities of training rows only."""
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"unknown calibration {method!r}; expected one of {CALIBRATION_METHODS}")
    if method == "none":
        return None
    if method == "sigmoid":
        return LogisticRegression(C=1e6, max_iter=1000).fit(_logit(raw_probability), y)
    return IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(
        np.asarray(raw_probability, dtype="float64"), y
    )


def apply_calibrator(calibrator, method: str, raw_probability: np.ndarray) -> np.ndarray:
    if calibrator is None:
        return np.asarray(raw_probability, dtype="float64")
    if method == "sigmoid":
        # What `calibrator.predict_proba(_logit(raw))[:, 1]` computes for one feature (the
        # same operations, so the same bits), without its input validation: that cost more
        # than scoring a request's row.
        decision = _logit(raw_probability)[:, 0] * calibrator.coef_[0, 0] + calibrator.intercept_[0]
        return expit(decision)
    return calibrator.predict(np.asarray(raw_probability, dtype="float64"))


def choose_threshold(
    y_true: pd.Series, probability: pd.Series, target_recall: float
) -> ThresholdChoice:
    """The highest threshold whose recall still reaches `target_recall` (more precision, same
    recall goal). Pass out-of-fold probabilities of training rows, never holdout scores."""
    if not 0 < target_recall <= 1:
        raise ValueError(f"target_recall must be in (0, 1], got {target_recall}")
    precision, recall, thresholds = precision_recall_curve(y_true, probability)
    # precision/recall have one more entry than thresholds; drop the final (recall 0) point.
    reaching = np.flatnonzero(recall[:-1] >= target_recall)
    best = reaching.max() if reaching.size else 0
    threshold = float(thresholds[best])
    flagged = np.asarray(probability) >= threshold
    return ThresholdChoice(
        threshold=threshold,
        policy="target_recall",
        target=float(target_recall),
        recall=float(recall[best]),
        precision=float(precision[best]),
        flagged_share=float(flagged.mean()),
    )


def decile_edges(probability: pd.Series) -> list[float]:
    """Score cut points between deciles, from the training population's out-of-fold scores, so
    that decile 1 means the same thing for every file the model scores."""
    return [float(q) for q in np.quantile(probability, np.linspace(0.9, 0.1, 9))]


def assign_decile(probability: pd.Series, edges: list[float]) -> pd.Series:
    """1 = the top 10% of scores (by the training population), 10 = the bottom 10%."""
    above = np.zeros(len(probability), dtype="int64")
    values = np.asarray(probability, dtype="float64")
    for edge in edges:
        above += values < edge
    return pd.Series(above + 1, index=getattr(probability, "index", None), dtype="int64")


@dataclass
class TrainedModel:
    model: CalibratedModel
    threshold: ThresholdChoice
    oof_probability: pd.Series  # calibrated, training rows only
    decile_edges: list[float]
    params: dict = field(default_factory=dict)


def train_affluent_model(
    features: pd.DataFrame,
    labels: pd.Series,
    spec: ModelSpec,
    target_recall: float,
    seed: int,
    calibration: str = "sigmoid",
    cv_folds: int = 5,
    cross_validation: CrossValidation | None = None,
) -> TrainedModel:
    """Fit `spec` on the rows given (training rows only), calibrate it and choose its threshold
    on out-of-fold predictions of the same rows: the holdout stays unseen by every fitted step.
    Pass the candidate's `cross_validation` from the model comparison to reuse its folds."""
    X = features[MODEL_FEATURES]
    y = labels.astype("int64")
    if cross_validation is None or cross_validation.spec != spec:
        cross_validation = cross_validate(spec, X, y, cv_folds, seed)
    raw_oof = cross_validation.oof_probability.reindex(features.index)
    calibrator = fit_calibrator(raw_oof, y, calibration)
    oof = pd.Series(apply_calibrator(calibrator, calibration, raw_oof), index=features.index)
    pipeline = build_pipeline(spec, positive_weight(y), seed).fit(X, y)
    return TrainedModel(
        model=CalibratedModel(pipeline, calibrator, calibration),
        threshold=choose_threshold(y, oof, target_recall),
        oof_probability=oof,
        decile_edges=decile_edges(oof),
        params={
            "family": spec.family,
            "class_weighting": spec.class_weighting,
            **{f"{spec.family}.{k}": v for k, v in spec.params.items()},
            "calibration": calibration,
            "cv_folds": len(cross_validation.folds),
            "seed": seed,
        },
    )


def predict_probability(
    model: CalibratedModel, features: pd.DataFrame, matrix: np.ndarray | None = None
) -> pd.Series:
    """Calibrated P(AFFLUENT) for each row of a feature table (`matrix`: its prepared matrix,
    float64, if built already)."""
    # The model picks its own columns by name (see lib/prepared.py): no copy of the frame.
    probability = model.predict_proba(features, matrix)[:, 1].astype("float64")
    return pd.Series(probability, index=features.index, name="probability")
