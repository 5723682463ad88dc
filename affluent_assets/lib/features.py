"""Row-wise cleaning and feature building: nothing here is fitted, so training and scoring
can call the same functions on any file and get the same columns.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from affluent_assets.lib.contract import (
    AGE_PLACEHOLDER,
    LABEL,
    PLAUSIBLE_AGE,
    POSITIVE,
    RAW_COLUMNS,
    TEXT_COLUMNS,
)
from affluent_assets.lib.levels import factorized, remember


def snake_case(column: str) -> str:
    """`Asset value` -> `asset_value`, `DRvCR` -> `drvcr`: names analysts can type in SQL."""
    return re.sub(r"\W+", "_", column.strip()).lower()


CLEAN_COLUMN_NAMES = {column: snake_case(column) for column in RAW_COLUMNS}
INTEGER_COLUMNS = ["c_id", "c_age", "num_prd"]

# 0/1 flags: loan tags, and gaps made explicit (they are predictive, see build_features).
FLAG_FEATURES = [
    "hl_tag",
    "al_tag",
    "age_unknown",
    "has_casa",
    "has_time_deposit",
    "has_unit_trust",
    "has_card_spend",
    "has_income_band",
    "has_drvcr",
]
# Features the model sees; identifiers (C_ID, postal code) and AVG_TRN_AMT (= ANN_TRN_AMT / 12,
# so redundant) are left out.
NUMERIC_FEATURES = [
    "age",
    "incm_typ",
    "num_prd",
    "casatd_cnt",
    "mthcasa",
    "maxcasa",
    "mincasa",
    "drvcr",
    "mthtd",
    "maxtd",
    "asset_value",
    "pur_price_avg",
    "ut_ave",
    "maxut",
    "n_funds",
    "cc_ave",
    "max_mth_trn_amt",
    "min_mth_trn_amt",
    "ann_trn_amt",
    "ann_n_trx",
    "cc_lmt",
    "total_deposits",
    *FLAG_FEATURES,
]
CATEGORICAL_FEATURES = ["c_edu", "c_hse", "gn_occ"]
MODEL_FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES
FEATURE_TABLE_COLUMNS = ["customer_key", *MODEL_FEATURES]


Columns = Mapping[str, Any]  # column name -> values: a DataFrame, or a dict of NumPy arrays


def clean_customers(raw: pd.DataFrame, source_file: str, first_row: int = 1) -> pd.DataFrame:
    """Validated raw extract -> snake_case columns, tidy text, a row identifier that is unique
    although C_ID repeats (`<C_ID>-<data row>`), and the source file and row it came from.
    `first_row` is the data row of `raw`'s first row in its file (chunks of a large file)."""
    # Fresh arrays or views of `raw`: no need to copy them again.
    return pd.DataFrame(clean_columns(raw, source_file, first_row), copy=False)


def clean_columns(raw: Columns, source_file: str, first_row: int = 1) -> dict[str, np.ndarray]:
    """`clean_customers` as NumPy columns, from a frame or a dict of columns: the one cleaning
    code, whether it then becomes a table (training, a landed file) or an answer (a request)."""
    columns = {}
    for raw_name in (c for c in RAW_COLUMNS if c in raw):
        name, values = CLEAN_COLUMN_NAMES[raw_name], raw[raw_name]
        if name in INTEGER_COLUMNS:
            columns[name] = np.asarray(values).astype("int64", copy=False)
        elif raw_name in TEXT_COLUMNS or raw_name == LABEL:
            columns[name] = _tidy_text(values, upper=raw_name == LABEL)
        else:
            columns[name] = np.asarray(values)
    rows = len(columns["c_id"])
    columns.setdefault("c_seg", np.full(rows, None, dtype=object))
    source_row = np.arange(first_row, first_row + rows, dtype="int64")
    return {
        "customer_key": _row_keys(columns["c_id"], source_row),
        "source_file": np.full(rows, source_file, dtype=object),
        "source_row": source_row,
        **columns,
    }


def _row_keys(c_id: np.ndarray, source_row: np.ndarray) -> np.ndarray:
    """`<C_ID>-<data row>` per row."""
    if len(c_id) <= SMALL_ROWS:  # a request: Arrow's kernels cost more to call than to run
        keys = [f"{a}-{b}" for a, b in zip(c_id.tolist(), source_row.tolist(), strict=True)]
        return np.asarray(keys, dtype=object)
    return arrow_row_keys(c_id, source_row).to_numpy(zero_copy_only=False)


def arrow_row_keys(c_id: np.ndarray, source_row: np.ndarray) -> pa.Array:
    """`<C_ID>-<data row>` per row, as Arrow text (what a stored table is written from)."""
    return pc.binary_join_element_wise(
        pc.cast(pa.array(c_id), pa.string()), pc.cast(pa.array(source_row), pa.string()), "-"
    )


# Below this, a request's few rows: plain Python (a dictionary, a loop) beats calling a
# kernel or factorizing; the scoring modules share it.
SMALL_ROWS = 4096


def _tidy_text(values, upper: bool = False) -> np.ndarray:
    """Text without surrounding spaces, blanks as None (numbers in a text column become text).
    Arrow's string kernels: pandas' object-string methods cost a second per million rows. A
    file's chunk holds a few levels in many rows: each distinct value is tidied once."""
    if len(values) > SMALL_ROWS:
        codes, levels = factorized(values)  # blanks: code -1
        # Tidying can make levels equal (" A" and "A"): the tidy column's own codes.
        tidy_codes, tidy_levels = pd.factorize(_tidy_values(levels, upper))
        tidy = np.append(tidy_levels.astype(object), None)[np.append(tidy_codes, -1)[codes]]
        return _read_only(remember(tidy, np.append(tidy_codes, -1)[codes], tidy_levels))
    return _tidy_values(values, upper)


def _tidy_values(values, upper: bool) -> np.ndarray:
    """`_tidy_text` value by value, in Arrow (a column's levels, however many, or a few rows)."""
    try:
        text = pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowTypeError, pa.ArrowInvalid):  # numbers or other non-text values
        values = pd.Series(values, dtype=object)
        text = pa.array(
            values.where(values.isna(), values.astype(str)), pa.string(), from_pandas=True
        )
    text = pc.utf8_trim_whitespace(text)
    if upper:
        text = pc.utf8_upper(text)
    return text.to_numpy(zero_copy_only=False).astype(object, copy=False)


def build_features(clean: pd.DataFrame) -> pd.DataFrame:
    """The model's inputs, one row per customer, computed from that row alone."""
    return pd.DataFrame(feature_columns(clean), index=clean.index, copy=False)


def feature_columns(clean: Columns) -> dict[str, np.ndarray]:
    """`build_features` as NumPy columns (FEATURE_TABLE_COLUMNS, in order), from a frame or a
    dict of clean columns."""
    age = floats(clean["c_age"])
    implausible = (age == AGE_PLACEHOLDER) | ~(
        (age >= PLAUSIBLE_AGE[0]) & (age <= PLAUSIBLE_AGE[1])
    )

    def number(column: str) -> np.ndarray:
        return floats(clean[column])

    def present(column: str) -> np.ndarray:
        return (~np.isnan(number(column))).astype("float64")

    columns = {"customer_key": np.asarray(clean["customer_key"])}
    columns |= {c: number(c) for c in NUMERIC_FEATURES if c in clean}
    columns |= {
        "age": np.where(implausible, np.nan, age),
        "age_unknown": implausible.astype("float64"),
        # Loan flags are 1-or-blank in the extract: blank means "no loan", not "unknown".
        "hl_tag": np.nan_to_num(number("hl_tag"), nan=0.0),
        "al_tag": np.nan_to_num(number("al_tag"), nan=0.0),
        "total_deposits": np.nan_to_num(number("mthcasa")) + np.nan_to_num(number("mthtd")),
        # Gaps are informative (AFFLUENT customers rarely lack deposits or funds), so they are
        # made explicit before imputation can hide them.
        "has_casa": present("mthcasa"),
        "has_time_deposit": present("mthtd"),
        "has_unit_trust": present("ut_ave"),
        "has_card_spend": present("ann_trn_amt"),
        "has_income_band": present("incm_typ"),
        "has_drvcr": present("drvcr"),
    }
    for column in CATEGORICAL_FEATURES:
        columns[column] = _levels(clean[column])
    return {c: columns[c] for c in FEATURE_TABLE_COLUMNS}


def floats(values) -> np.ndarray:
    """A numeric column as float64, blanks (None, pandas' NA) as NaN."""
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype="float64", na_value=np.nan)
    return np.asarray(values, dtype="float64")


def _levels(values) -> np.ndarray:
    """A text column as an object array, blanks (NaN, pandas' NA) as None; a copy."""
    array = np.array(values, dtype=object)
    if len(array) <= SMALL_ROWS:
        blank = pd.isna(array)
        if blank.any():
            array[blank] = None
        return array
    codes, levels = factorized(values)  # a cleaned column's codes are known already
    if (blank := codes < 0).any():
        array[blank] = None
    return _read_only(remember(array, codes, levels))


def _read_only(array: np.ndarray) -> np.ndarray:
    """Its codes are remembered (lib/levels): it must not change under them."""
    array.flags.writeable = False
    return array


def label_vector(clean: pd.DataFrame) -> pd.Series:
    """1 for AFFLUENT, 0 for NORMAL."""
    return (clean["c_seg"] == POSITIVE).astype("int64")
