"""The fitted pipeline applied fast: the model's own fitted preprocessing turned into one float32
matrix, then the booster's own predictions on it (`inplace_predict`, or for many rows the same
bits from lib/tree_predict.py).

Scoring millions of rows through `Pipeline.predict_proba` spends most of its time one-hot
encoding Python strings row by row. Here each fitted transformer of the pipeline still does
its own work, so scoring cannot transform data differently from training: numbers go through
the fitted numeric transformer as a block, and the categorical transformer is applied only to
the distinct combinations of levels in the chunk (a few hundred at most), whose encoded rows
are then gathered for every customer. Tests hold the result equal to `predict_proba`.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier

from affluent_assets.lib.features import SMALL_ROWS, floats
from affluent_assets.lib.levels import factorized

Columns = Mapping[str, Any]  # a feature frame, or a dict of its columns (lib/features)


def prepared_matrix(pipeline: Pipeline, features: Columns, dtype="float32") -> np.ndarray:
    """The matrix the estimator sees, built from the fitted `preprocess` step of `pipeline`;
    equal to `preprocess.transform(features)`. `features`: a feature frame or a dict of its
    columns (lib/features.feature_columns). float32 is the precision a booster splits on.
    Each block is written straight into its columns of one matrix (no stacking copies)."""
    preprocess = pipeline.named_steps["preprocess"]
    rows = row_count(features)
    # Column-major: every block is written column by column into contiguous memory, and the
    # booster predicts as fast from it as from row-major.
    out = np.empty((rows, _width(preprocess)), dtype, order="F")
    for name, transformer, columns in preprocess.transformers_:
        if transformer == "drop" or name == "remainder":
            continue
        columns = list(columns)
        target = out[:, preprocess.output_indices_[name]]  # a view: filled in place
        if all(np.asarray(features[c]).dtype == object for c in columns):
            _transform_distinct(transformer, columns, [features[c] for c in columns], target)
        elif (imputer := _lone_imputer(transformer)) is not None:
            _impute(imputer, features, columns, target)
        else:
            part = pd.DataFrame({c: floats(features[c]) for c in columns})
            target[:] = transformer.transform(part)
    return out


_WIDTHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _width(preprocess) -> int:
    """How many columns the fitted preprocessing puts out; asking scikit-learn costs more than
    preparing one customer's row, so it is asked once per fitted preprocessing."""
    if preprocess not in _WIDTHS:
        _WIDTHS[preprocess] = len(preprocess.get_feature_names_out())
    return _WIDTHS[preprocess]


def row_count(features: Columns) -> int:
    if isinstance(features, pd.DataFrame):
        return len(features)
    return len(next(iter(features.values()))) if features else 0


def _lone_imputer(transformer) -> SimpleImputer | None:
    """The fitted imputer when a numeric block is imputation only (the tree models)."""
    steps = transformer.steps if isinstance(transformer, Pipeline) else [(None, transformer)]
    only = steps[0][1] if len(steps) == 1 else None
    return only if isinstance(only, SimpleImputer) and only.strategy != "constant" else None


def _impute(imputer: SimpleImputer, features: Columns, columns: list, target) -> None:
    """`imputer.transform(features[columns])` for numbers: each blank takes its column's fitted
    statistic (an all-blank training column keeps 0, as `keep_empty_features` makes sklearn do)."""
    fill = np.nan_to_num(imputer.statistics_, nan=0.0).astype(target.dtype)
    for j, column in enumerate(columns):  # one column's copy at a time
        values = floats(features[column]).astype(target.dtype, copy=False)
        target[:, j] = np.where(np.isnan(values), fill[j], values)


def _transform_distinct(transformer, columns: list, arrays: list, target) -> None:
    """`transformer.transform(part)` computed once per distinct row of the `columns`, then
    gathered. Encodings are remembered per fitted transformer (`_ENCODED`), so a request of one
    customer whose levels were seen before costs a lookup, not a call into scikit-learn."""
    keys, inverse = _distinct_rows([np.asarray(a, dtype=object) for a in arrays])
    encoded = np.empty((len(keys), target.shape[1]), dtype=target.dtype)
    memory = _ENCODED.setdefault(transformer, {})
    unseen = [i for i, key in enumerate(keys) if key not in memory]
    if unseen:
        part = pd.DataFrame(
            [[np.nan if v is _BLANK else v for v in keys[i]] for i in unseen],
            columns=columns,
            dtype=object,
        )
        fresh = np.asarray(transformer.transform(part), dtype="float64")
        for i, row in zip(unseen, fresh, strict=True):
            if len(memory) < MAX_REMEMBERED:
                memory[keys[i]] = row
            encoded[i] = row
    for i, key in enumerate(keys):
        if key in memory:
            encoded[i] = memory[key]
    for j in range(encoded.shape[1]):
        target[:, j] = encoded[inverse, j]


def _distinct_rows(arrays: list[np.ndarray]) -> tuple[list[tuple], np.ndarray]:
    """The distinct rows of the columns (as tuples of levels, NaN as `_BLANK`) and, per row,
    the index of its distinct row."""
    rows = len(arrays[0]) if arrays else 0
    if rows <= SMALL_ROWS:  # a request's few rows: a dictionary beats factorizing
        index: dict[tuple, int] = {}
        rows_as_keys = (tuple(map(_key, row)) for row in zip(*arrays, strict=True))
        inverse = [index.setdefault(key, len(index)) for key in rows_as_keys]
        return list(index), np.asarray(inverse, dtype="int64")
    combined = np.zeros(rows, dtype="int64")
    for values in arrays:
        codes, levels = factorized(values)  # known for a chunk's features (lib/levels)
        combined = combined * (len(levels) + 1) + np.where(codes < 0, len(levels), codes)
    _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    keys = [tuple(_key(values[i]) for values in arrays) for i in first.tolist()]
    return keys, inverse.reshape(-1)


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


COMPILED_ROWS = 100_000  # fewer rows: numba's import would cost more than the kernel saves


def booster_probability(booster, matrix: np.ndarray) -> np.ndarray:
    """`booster.inplace_predict(matrix)`, bit for bit; many rows through the compiled tables of
    lib/tree_predict.py (about twice the rows per core), a request's or a small file's rows
    through the booster itself."""
    if len(matrix) >= COMPILED_ROWS:
        from affluent_assets.lib.tree_predict import predictor

        compiled = predictor(booster)
        if compiled is not None:
            return compiled.probability(matrix)
    return booster.inplace_predict(matrix)


def pipeline_probability(
    pipeline: Pipeline, features: Columns, matrix: np.ndarray | None = None
) -> np.ndarray:
    """`pipeline.predict_proba(features)[:, 1]`, computed on the prepared matrix: for XGBoost
    the booster's own predictions (`booster_probability`), for the other families their
    `predict_proba`.
    `matrix`: the float64 prepared matrix when the caller has it (reasons need it too); its
    float32 copy is the same matrix the booster would get built directly in float32."""
    if row_count(features) == 0:
        return np.zeros(0, dtype="float64")
    estimator = pipeline.named_steps["model"]
    if is_booster(pipeline):
        if matrix is None:
            matrix = prepared_matrix(pipeline, features, "float32")
        matrix = np.asarray(matrix, dtype="float32")
        return np.asarray(booster_probability(estimator.get_booster(), matrix), dtype="float64")
    if matrix is None:
        matrix = prepared_matrix(pipeline, features, "float64")
    return estimator.predict_proba(matrix)[:, 1].astype("float64")
