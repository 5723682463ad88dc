"""Model training: one scikit-learn Pipeline (imputation + encoding + XGBoost) so that the
fitted preprocessing travels with the model, and a threshold chosen on out-of-fold predictions
of training rows only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import precision_recall_curve
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from xgboost import XGBClassifier

from affluent_assets.lib.features import CATEGORICAL_FEATURES, NUMERIC_FEATURES

MISSING_LEVEL = "MISSING"


@dataclass(frozen=True)
class XGBoostParams:
    n_estimators: int = 400
    max_depth: int = 4
    learning_rate: float = 0.05
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 5.0
    reg_lambda: float = 1.0


@dataclass(frozen=True)
class ThresholdChoice:
    """The operating point and what it implies, all measured on out-of-fold training rows."""

    threshold: float
    policy: str
    target: float
    recall: float
    precision: float
    flagged_share: float


@dataclass
class TrainedModel:
    pipeline: Pipeline
    threshold: ThresholdChoice
    oof_probability: pd.Series
    decile_edges: list[float]
    params: dict = field(default_factory=dict)


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


def build_pipeline(
    params: XGBoostParams, scale_pos_weight: float, seed: int, n_jobs: int = 2
) -> Pipeline:
    """Median imputation for numbers, a MISSING level plus one-hot for text, then XGBoost."""
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_LEVEL)),
            # Rare levels (e.g. one OFFICE in 66k rows) share an "infrequent" column; levels
            # never seen in training are ignored at scoring time instead of failing.
            (
                "encode",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist", min_frequency=20, sparse_output=False
                ),
            ),
        ]
    )
    preprocess = ColumnTransformer(
        [
            (
                "numeric",
                SimpleImputer(strategy="median", keep_empty_features=True),
                NUMERIC_FEATURES,
            ),
            ("categorical", categorical, CATEGORICAL_FEATURES),
        ],
        verbose_feature_names_out=True,
    )
    model = XGBClassifier(
        **vars(params),
        objective="binary:logistic",
        eval_metric="aucpr",
        tree_method="hist",
        scale_pos_weight=scale_pos_weight,
        random_state=seed,
        n_jobs=n_jobs,
    )
    return Pipeline([("preprocess", preprocess), ("model", model)])


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
    flagged = probability >= threshold
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


def train_affluent_model(
    features: pd.DataFrame,
    labels: pd.Series,
    params: XGBoostParams,
    target_recall: float,
    cv_folds: int,
    seed: int,
) -> TrainedModel:
    """Fit on the rows given (training rows only) and choose the threshold on their out-of-fold
    predictions, so the holdout stays unseen by every fitted step."""
    X = features[NUMERIC_FEATURES + CATEGORICAL_FEATURES]
    y = labels.astype("int64")
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        raise ValueError("training rows hold only one class; cannot train a classifier")
    scale_pos_weight = (len(y) - positives) / positives
    folds = StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=seed)
    oof = cross_val_predict(
        build_pipeline(params, scale_pos_weight, seed), X, y, cv=folds, method="predict_proba"
    )[:, 1]
    oof_probability = pd.Series(oof, index=features.index, name="oof_probability")
    pipeline = build_pipeline(params, scale_pos_weight, seed).fit(X, y)
    return TrainedModel(
        pipeline=pipeline,
        threshold=choose_threshold(y, oof_probability, target_recall),
        oof_probability=oof_probability,
        decile_edges=decile_edges(oof_probability),
        params={
            **vars(params),
            "scale_pos_weight": scale_pos_weight,
            "cv_folds": cv_folds,
            "seed": seed,
        },
    )


def predict_probability(pipeline: Pipeline, features: pd.DataFrame) -> pd.Series:
    """P(AFFLUENT) for each row of a feature table."""
    X = features[NUMERIC_FEATURES + CATEGORICAL_FEATURES]
    probability = pipeline.predict_proba(X)[:, 1].astype("float64")
    return pd.Series(probability, index=features.index, name="probability")
