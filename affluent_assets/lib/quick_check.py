"""The contract's row checks on NumPy, for the common case of rows that pass.

pandera spends about 20 ms on a one-row frame against the 30-column contract, almost all of it
bookkeeping around each column's checks; a request to the inference service is one row or a few
hundred, so that would be most of its answer time. `passes` evaluates the contract's rules from
lib/contract.py (the same constants the pandera schema in lib/schemas.py is built from) on all
numeric columns at once, as one float matrix, and returns the frame as pandera would have coerced
it only when every row passes. Anything else returns None and the caller runs pandera itself,
which names the rows, columns and checks: so a mistake here can only cost time, never accept a
row pandera would reject, and a test holds the two to the same verdict on every rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from affluent_assets.lib.contract import (
    COUNT_COLUMNS,
    LABEL,
    LABEL_LEVELS,
    NON_NEGATIVE_COLUMNS,
    RAW_COLUMNS,
    REQUIRED_COLUMNS,
)
from affluent_assets.lib.extract_checks import CONTROL_CHARACTERS
from affluent_assets.lib.features import SMALL_ROWS
from affluent_assets.lib.levels import factorized
from affluent_assets.lib.validation import validate_frame

NUMERIC = [c for c, kind in RAW_COLUMNS.items() if kind != "text"]
TEXT = [c for c, kind in RAW_COLUMNS.items() if kind == "text" and c != LABEL]
_WHOLE = np.array([RAW_COLUMNS[c] == "int" or c in COUNT_COLUMNS for c in NUMERIC])
_NON_NEGATIVE = np.array([c in NON_NEGATIVE_COLUMNS for c in NUMERIC])
_REQUIRED = np.array([c in REQUIRED_COLUMNS for c in NUMERIC])
_FLAGS = np.array([c in ("HL_tag", "AL_tag") for c in NUMERIC])  # 1 or blank


def passes(frame: pd.DataFrame) -> pd.DataFrame | None:
    """`frame` (contract columns, label optional, extra columns kept) with numbers as float64
    and text as object, when every row meets the contract; None otherwise. A frame already of
    those types (a typed read) comes back as it is, not copied."""
    columns = checked_columns(frame)
    if columns is None:
        return None
    changed = {c: v for c, v in columns.items() if frame[c].dtype != v.dtype}
    return frame.assign(**changed) if changed else frame


def validated(frame: pd.DataFrame, schema, source: str) -> pd.DataFrame:
    """`frame` checked against the contract (`schema`: lib/schemas.raw_extract_schema without a
    required label): the quick path when every row passes, else pandera, whose
    ContractViolation names the file, columns, rows and checks."""
    valid = passes(frame)
    return valid if valid is not None else validate_frame(schema, frame, source)


def checked_columns(rows: Mapping[str, Any]) -> dict[str, np.ndarray] | None:
    """The contract columns of `rows` (a frame, or a dict of equally long lists or arrays) as
    pandera would coerce them, numbers float64 and text object, when every row meets the
    contract; None otherwise. Columns outside the contract are left out."""
    if any(c not in rows for c in NUMERIC + TEXT):
        return None
    try:
        # One row per column: each column's values are contiguous.
        numbers = np.array([_numbers(rows[c]) for c in NUMERIC], dtype="float64")
    except (TypeError, ValueError):  # a value that is no number
        return None
    if numbers.ndim != 2 or not _numbers_pass(numbers):
        return None
    texts = [np.asarray(rows[c], dtype=object) for c in TEXT]
    label = np.asarray(rows[LABEL], dtype=object) if LABEL in rows else None
    if not all(_text_passes(values) for values in texts):
        return None
    if label is not None and not _label_passes(label):
        return None
    columns = {c: numbers[j] for j, c in enumerate(NUMERIC)}
    columns |= {c: values for c, values in zip(TEXT, texts, strict=True)}
    if label is not None:
        columns[LABEL] = label
    return columns


def _numbers(values) -> np.ndarray:
    """A column ready to become float64 as pandera coerces it: numbers as they are (no Python
    object per value: a file's chunk is read typed), anything else as Python objects, each
    converted as `float()` would."""
    if isinstance(values, (np.ndarray, pd.Series)) and values.dtype.kind in "fiub":
        return np.asarray(values)
    return np.asarray(values, dtype=object)


def _numbers_pass(numbers: np.ndarray) -> bool:
    """`numbers`: one row per NUMERIC column, one column per customer. Comparisons with NaN
    are false, so blanks pass every rule but the required one without being filled in."""
    if np.isnan(numbers[_REQUIRED]).any() or np.isinf(numbers).any():
        return False
    if (numbers[_NON_NEGATIVE] < 0).any():
        return False
    whole = numbers[_WHOLE]
    if (np.abs(whole - np.trunc(whole)) > 0).any():
        return False
    flags = numbers[_FLAGS]
    return bool(((flags == 1.0) | np.isnan(flags)).all())


def _distinct(values: np.ndarray):
    """The distinct values of a text column: a file's chunk holds a few levels in many rows."""
    return set(values.tolist()) if len(values) <= SMALL_ROWS else factorized(values)[1]


def _text_passes(values: np.ndarray) -> bool:
    return not any(isinstance(v, str) and CONTROL_CHARACTERS.search(v) for v in _distinct(values))


def _label_passes(values: np.ndarray) -> bool:
    for value in _distinct(values):
        if value is None or (not isinstance(value, str) and pd.isna(value)):  # a blank
            continue
        if value not in LABEL_LEVELS or CONTROL_CHARACTERS.search(value):
            return False
    return True
