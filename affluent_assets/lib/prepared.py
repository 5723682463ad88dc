"""The fitted pipeline applied fast: the model's own fitted preprocessing turned into one float32
matrix, then the booster's own `inplace_predict` on it.

Scoring millions of rows through `Pipeline.predict_proba` spends most of its time one-hot
encoding Python strings row by row. Here each fitted transformer of the pipeline still does
its own work, so scoring cannot transform data differently from training: numbers go through
the fitted numeric transformer as a block, and the categorical transformer is applied only to
the distinct combinations of levels in the chunk (a few hundred at most), whose encoded rows
are then gathered for every customer. Tests hold the result equal to `predict_proba`.
"""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier


def prepared_matrix(pipeline: Pipeline, features: pd.DataFrame, dtype="float32") -> np.ndarray:
    """The matrix the estimator sees, built from the fitted `preprocess` step of `pipeline`;
    equal to `preprocess.transform(features)`. float32 is the precision a booster splits on.
    Each block is written straight into its columns of one matrix (no stacking copies)."""
    preprocess = pipeline.named_steps["preprocess"]
    # Column-major: every block is written column by column into contiguous memory, and the
    # booster predicts as fast from it as from row-major.
    out = np.empty((len(features), len(preprocess.get_feature_names_out())), dtype, order="F")
    for name, transformer, columns in preprocess.transformers_:
        if transformer == "drop" or name == "remainder":
            continue
        columns = list(columns)
        target = out[:, preprocess.output_indices_[name]]  # a view: filled in place
        if all(features[c].dtype == object for c in columns):
            _transform_distinct(transformer, features[columns], target)
        elif (imputer := _lone_imputer(transformer)) is not None:
            _impute(imputer, features, columns, target)
        else:
            target[:] = transformer.transform(features[columns])
    return out


def _lone_imputer(transformer) -> SimpleImputer | None:
    """The fitted imputer when a numeric block is imputation only (the tree models)."""
    steps = transformer.steps if isinstance(transformer, Pipeline) else [(None, transformer)]
    only = steps[0][1] if len(steps) == 1 else None
    return only if isinstance(only, SimpleImputer) and only.strategy != "constant" else None


def _impute(imputer: SimpleImputer, features: pd.DataFrame, columns: list, target) -> None:
    """`imputer.transform(features[columns])` for numbers: each blank takes its column's fitted
    statistic (an all-blank training column keeps 0, as `keep_empty_features` makes sklearn do)."""
    fill = np.nan_to_num(imputer.statistics_, nan=0.0).astype(target.dtype)
    for j, column in enumerate(columns):
        values = features[column].to_numpy(dtype=target.dtype, na_value=np.nan)
        target[:, j] = np.where(np.isnan(values), fill[j], values)


def _transform_distinct(transformer, part: pd.DataFrame, target) -> None:
    """`transformer.transform(part)` computed once per distinct row of `part`, then gathered.
    Encodings are remembered per fitted transformer (`_ENCODED`), so a request of one
    customer whose levels were seen before costs a lookup, not a call into scikit-learn."""
    combined = np.zeros(len(part), dtype="int64")
    for column in part.columns:
        codes, levels = pd.factorize(part[column], use_na_sentinel=False)
        combined = combined * (len(levels) + 1) + codes
    _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    distinct = part.iloc[first]
    encoded = np.empty((len(distinct), target.shape[1]), dtype=target.dtype)
    memory = _ENCODED.setdefault(transformer, {})
    keys = [tuple(_key(v) for v in row) for row in distinct.itertuples(index=False, name=None)]
    unseen = [i for i, key in enumerate(keys) if key not in memory]
    if unseen:
        fresh = np.asarray(transformer.transform(distinct.iloc[unseen]), dtype="float64")
        for i, row in zip(unseen, fresh, strict=True):
            if len(memory) < MAX_REMEMBERED:
                memory[keys[i]] = row
            encoded[i] = row
    for i, key in enumerate(keys):
        if key in memory:
            encoded[i] = memory[key]
    inverse = inverse.reshape(-1)
    for j in range(encoded.shape[1]):
        target[:, j] = encoded[inverse, j]


# Fitted transformer -> {levels of one row: its encoded row}. Weak: a model no longer loaded
# takes its encodings with it. Bounded: unknown levels from many requests cannot grow it.
_ENCODED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
MAX_REMEMBERED = 20_000


def _key(value):
    """A level as a dictionary key that equals itself: NaN (blank) is not equal to NaN."""
    return _BLANK if isinstance(value, float) and value != value else value


_BLANK = ("blank",)


def is_booster(pipeline: Pipeline) -> bool:
    return isinstance(pipeline.named_steps["model"], XGBClassifier)


def pipeline_probability(
    pipeline: Pipeline, features: pd.DataFrame, matrix: np.ndarray | None = None
) -> np.ndarray:
    """`pipeline.predict_proba(features)[:, 1]`, computed on the prepared matrix: for XGBoost
    the booster's own `inplace_predict`, for the other families their `predict_proba`.
    `matrix`: the float64 prepared matrix when the caller has it (reasons need it too); its
    float32 copy is the same matrix the booster would get built directly in float32."""
    if features.empty:
        return np.zeros(0, dtype="float64")
    estimator = pipeline.named_steps["model"]
    if is_booster(pipeline):
        if matrix is None:
            matrix = prepared_matrix(pipeline, features, "float32")
        matrix = np.asarray(matrix, dtype="float32")
        return np.asarray(estimator.get_booster().inplace_predict(matrix), dtype="float64")
    if matrix is None:
        matrix = prepared_matrix(pipeline, features, "float64")
    return estimator.predict_proba(matrix)[:, 1].astype("float64")
