"""Row-wise cleaning and feature building: nothing here is fitted, so training and scoring
can call the same functions on any file and get the same columns.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from affluent_assets.lib.contract import (
    AGE_PLACEHOLDER,
    PLAUSIBLE_AGE,
    POSITIVE,
    RAW_COLUMNS,
    TEXT_COLUMNS,
)


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


def clean_customers(raw: pd.DataFrame, source_file: str, first_row: int = 1) -> pd.DataFrame:
    """Validated raw extract -> snake_case columns, tidy text, a row identifier that is unique
    although C_ID repeats (`<C_ID>-<data row>`), and the source file and row it came from.
    `first_row` is the data row of `raw`'s first row in its file (chunks of a large file)."""
    clean = raw[[c for c in RAW_COLUMNS if c in raw.columns]].rename(columns=CLEAN_COLUMN_NAMES)
    for column in INTEGER_COLUMNS:
        clean[column] = clean[column].astype("int64")
    for column in (snake_case(c) for c in TEXT_COLUMNS):
        clean[column] = _tidy_text(clean[column])
    clean["c_seg"] = _tidy_text(clean["c_seg"], upper=True) if "c_seg" in clean else None
    source_row = np.arange(first_row, first_row + len(clean), dtype="int64")
    clean.insert(0, "source_row", source_row)
    clean.insert(0, "source_file", source_file)
    key = pc.binary_join_element_wise(
        pc.cast(pa.array(clean["c_id"].to_numpy()), pa.string()),
        pc.cast(pa.array(source_row), pa.string()),
        "-",
    )
    clean.insert(0, "customer_key", key.to_numpy(zero_copy_only=False))
    return clean.reset_index(drop=True)


def _tidy_text(values: pd.Series, upper: bool = False) -> pd.Series:
    """Text without surrounding spaces, blanks as None (numbers in a text column become text).
    Arrow's string kernels: pandas' object-string methods cost a second per million rows."""
    try:
        text = pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowTypeError, pa.ArrowInvalid):  # numbers or other non-text values
        text = pa.array(
            values.astype(object).where(values.isna(), values.astype(str)),
            pa.string(),
            from_pandas=True,
        )
    text = pc.utf8_trim_whitespace(text)
    if upper:
        text = pc.utf8_upper(text)
    return pd.Series(text.to_numpy(zero_copy_only=False), index=values.index, dtype=object)


def build_features(clean: pd.DataFrame) -> pd.DataFrame:
    """The model's inputs, one row per customer, computed from that row alone."""
    features = pd.DataFrame({"customer_key": clean["customer_key"]})
    age = clean["c_age"].astype("float64")
    implausible = (age == AGE_PLACEHOLDER) | ~age.between(*PLAUSIBLE_AGE)
    features["age"] = age.mask(implausible)
    features["age_unknown"] = implausible.astype("float64")
    passthrough = [c for c in NUMERIC_FEATURES if c in clean.columns and c not in features]
    for column in passthrough:
        features[column] = clean[column].astype("float64")
    # Loan flags are 1-or-blank in the extract: blank means "no loan", not "unknown".
    features["hl_tag"] = clean["hl_tag"].fillna(0.0).astype("float64")
    features["al_tag"] = clean["al_tag"].fillna(0.0).astype("float64")
    features["total_deposits"] = clean["mthcasa"].fillna(0.0) + clean["mthtd"].fillna(0.0)
    # Gaps are informative (AFFLUENT customers rarely lack deposits or funds), so they are
    # made explicit before imputation can hide them.
    features["has_casa"] = clean["mthcasa"].notna().astype("float64")
    features["has_time_deposit"] = clean["mthtd"].notna().astype("float64")
    features["has_unit_trust"] = clean["ut_ave"].notna().astype("float64")
    features["has_card_spend"] = clean["ann_trn_amt"].notna().astype("float64")
    features["has_income_band"] = clean["incm_typ"].notna().astype("float64")
    features["has_drvcr"] = clean["drvcr"].notna().astype("float64")
    for column in CATEGORICAL_FEATURES:
        features[column] = clean[column].astype(object).where(clean[column].notna(), None)
    return features[FEATURE_TABLE_COLUMNS]


def label_vector(clean: pd.DataFrame) -> pd.Series:
    """1 for AFFLUENT, 0 for NORMAL."""
    return (clean["c_seg"] == POSITIVE).astype("int64")
