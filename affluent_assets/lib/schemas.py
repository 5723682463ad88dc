"""pandera schemas for each step: the raw extract (the contract), clean customers, features, scores.

Each schema is built from lib/contract.py and lib/features.py, so a column or a rule is declared
once. Running a schema and saying what failed is lib/validation.py's; data-quality findings that
do not reject a file are lib/data_quality.py's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

from affluent_assets.lib.contract import (
    COUNT_COLUMNS,
    LABEL,
    LABEL_LEVELS,
    NON_NEGATIVE_COLUMNS,
    RAW_COLUMNS,
    REQUIRED_COLUMNS,
)
from affluent_assets.lib.extract_checks import CONTROL_CHARACTERS
from affluent_assets.lib.features import (
    CATEGORICAL_FEATURES,
    CLEAN_COLUMN_NAMES,
    FLAG_FEATURES,
    NUMERIC_FEATURES,
)

CONTROL_CHECK = "no_control_characters"

FINITE = pa.Check(lambda s: s.isna() | np.isfinite(s), error="must be a finite number")


def _no_control_characters(values: pd.Series) -> pd.Series | bool:
    """False where a text value holds a control character (tab, CR and LF are allowed). The
    extract's text columns hold a few levels, so the distinct values are searched, not the rows."""
    distinct = pd.unique(values.to_numpy())
    bad = [v for v in distinct if isinstance(v, str) and CONTROL_CHARACTERS.search(v)]
    return ~values.isin(bad) if bad else True


NO_CONTROL = pa.Check(
    _no_control_characters,
    name=CONTROL_CHECK,
    error=f"holds a control character ({CONTROL_CHECK})",
    ignore_na=False,  # blanks pass anyway; pandera's dropna would copy the column
)


def _raw_column(name: str, kind: str, require_label: bool) -> pa.Column:
    if name == LABEL:
        # Landing files for rescoring may lack the label, or carry the column blank.
        return pa.Column(
            object,
            [pa.Check.isin(LABEL_LEVELS), NO_CONTROL],
            nullable=not require_label,
            required=require_label,
            coerce=True,  # an all-blank label column reads as float
        )
    if kind == "text":
        # Text stays object so blanks remain NaN; unknown levels are a quality finding.
        return pa.Column(object, NO_CONTROL, nullable=True, coerce=True)
    # pandas reads "inf" in a CSV as a number; no amount or count in the extract is infinite.
    checks = [FINITE]
    if name in NON_NEGATIVE_COLUMNS:
        checks.append(pa.Check.ge(0, error="must not be negative"))
    if kind == "int" or name in COUNT_COLUMNS:
        checks.append(
            pa.Check(
                lambda s: s.isna() | (s % 1 == 0),
                element_wise=False,
                error="must be a whole number",
            )
        )
    if name in ("HL_tag", "AL_tag"):
        checks.append(pa.Check.isin([1.0], error="must be 1 or blank"))
    # Identifiers and counts that are never blank are integers in the extract; a blank makes
    # pandas read them as float, so they are coerced to float here and checked for blanks.
    dtype = "float64"
    return pa.Column(dtype, checks, nullable=name not in REQUIRED_COLUMNS, coerce=True)


def raw_extract_schema(require_label: bool = True) -> pa.DataFrameSchema:
    """The contract: 30 named columns, numeric where numeric, labels NORMAL/AFFLUENT."""
    return pa.DataFrameSchema(
        {name: _raw_column(name, kind, require_label) for name, kind in RAW_COLUMNS.items()},
        strict=False,
        name="raw_extract",
    )


def contract_frame(valid: pd.DataFrame) -> pd.DataFrame:
    """A validated extract reduced to the contract's columns in contract order, with integer
    columns as int64 (validation reads them as float so that a blank is reported, not a crash)."""
    return pd.DataFrame(
        {
            c: valid[c].to_numpy().astype("int64")
            if RAW_COLUMNS[c] == "int"
            else valid[c].to_numpy()
            for c in RAW_COLUMNS
            if c in valid.columns
        },
        index=valid.index,
    )


def clean_customers_schema(require_label: bool = True) -> pa.DataFrameSchema:
    """clean_customers: snake_case contract columns, a unique row key, label NORMAL/AFFLUENT."""
    columns = {
        "customer_key": pa.Column(str, unique=True),
        "source_file": pa.Column(str),
        "source_row": pa.Column("int64", pa.Check.ge(1)),
    }
    for raw_name, clean_name in CLEAN_COLUMN_NAMES.items():
        kind = RAW_COLUMNS[raw_name]
        if raw_name == LABEL:
            columns[clean_name] = pa.Column(
                object, pa.Check.isin(LABEL_LEVELS), nullable=not require_label
            )
        elif kind == "int":
            columns[clean_name] = pa.Column("int64", pa.Check.ge(0))
        elif kind == "float":
            columns[clean_name] = pa.Column("float64", nullable=True)
        else:
            columns[clean_name] = pa.Column(object, nullable=True)
    return pa.DataFrameSchema(columns, strict=True, name="clean_customers")


def customer_features_schema() -> pa.DataFrameSchema:
    """customer_features: one row per customer key, numeric features finite or blank, flags 0/1."""
    columns = {"customer_key": pa.Column(str, unique=True)}
    for name in NUMERIC_FEATURES:
        checks = [pa.Check.isin([0.0, 1.0])] if name in FLAG_FEATURES else [FINITE]
        columns[name] = pa.Column("float64", checks, nullable=name not in FLAG_FEATURES)
    for name in CATEGORICAL_FEATURES:
        columns[name] = pa.Column(object, nullable=True)
    return pa.DataFrameSchema(columns, strict=True, name="customer_features")


def scored_customers_schema() -> pa.DataFrameSchema:
    """Scores: probability in [0, 1], decile 1-10, predicted segment NORMAL/AFFLUENT."""
    return pa.DataFrameSchema(
        {
            "customer_key": pa.Column(str, unique=True),
            "affluent_probability": pa.Column("float64", pa.Check.in_range(0.0, 1.0)),
            "score_decile": pa.Column("int64", pa.Check.in_range(1, 10)),
            "predicted_segment": pa.Column(object, pa.Check.isin(LABEL_LEVELS)),
            "score_source": pa.Column(
                object, pa.Check.isin(["holdout", "out_of_fold", "in_sample"]), required=False
            ),
        },
        strict=False,
        name="scored_customers",
    )
