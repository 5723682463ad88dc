"""pandera schemas for each step: the raw extract (the contract), clean customers, features, scores.

`validate_frame` turns pandera's failure cases into one `ContractViolation` whose message names
the file, each failing column and check, and the data rows (row 1 = first row under the header).
Data-quality findings that real extracts have (unknown levels, placeholder ages) are not
violations: `quality_findings` counts them for a non-blocking check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa

from affluent_assets.lib.contract import (
    AGE_PLACEHOLDER,
    INCOME_BANDS,
    LABEL,
    LABEL_LEVELS,
    LEVELS,
    N_FUNDS_RANGE,
    NON_NEGATIVE_COLUMNS,
    NUM_PRD_RANGE,
    PLAUSIBLE_AGE,
    RAW_COLUMNS,
    REQUIRED_COLUMNS,
)
from affluent_assets.lib.extract_io import ExtractError
from affluent_assets.lib.features import (
    CATEGORICAL_FEATURES,
    CLEAN_COLUMN_NAMES,
    FLAG_FEATURES,
    NUMERIC_FEATURES,
)

MAX_ROWS_NAMED = 10  # rows quoted per failing column and check; the rest are counted


class ContractViolation(ExtractError):
    """An extract that breaks the data contract. `failures` holds pandera's failure cases."""

    def __init__(self, source: str, problem: str, failures: pd.DataFrame):
        self.failures = failures
        super().__init__(source, problem)


FINITE = pa.Check(lambda s: s.isna() | np.isfinite(s), error="must be a finite number")


def _raw_column(name: str, kind: str, require_label: bool) -> pa.Column:
    if name == LABEL:
        # Landing files for rescoring may lack the label, or carry the column blank.
        return pa.Column(
            object,
            pa.Check.isin(LABEL_LEVELS),
            nullable=not require_label,
            required=require_label,
            coerce=True,  # an all-blank label column reads as float
        )
    if kind == "text":
        # Text stays object so blanks remain NaN; unknown levels are a quality finding.
        return pa.Column(object, nullable=True, coerce=True)
    # pandas reads "inf" in a CSV as a number; no amount or count in the extract is infinite.
    checks = [FINITE]
    if name in NON_NEGATIVE_COLUMNS:
        checks.append(pa.Check.ge(0, error="must not be negative"))
    if kind == "int":
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


def validate_frame(schema: pa.DataFrameSchema, frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """The validated (coerced) frame, or ContractViolation naming source, columns and rows
    (data row n = the n-th row under the header, i.e. frame position n - 1)."""
    try:
        # inplace: coercion replaces the frame's own columns instead of copying all of them
        return schema.validate(frame, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as exc:
        cases = _useful_failure_cases(exc.failure_cases)
        raise ContractViolation(source, describe_failures(cases), cases) from None


def _useful_failure_cases(cases: pd.DataFrame) -> pd.DataFrame:
    # A column whose values could not be coerced also fails every later check with a TypeError
    # on the whole column; those echoes add nothing, so they are dropped.
    cases = cases.copy()
    cases["check"] = cases["check"].astype(str)
    uncoercible = set(cases.loc[cases["check"].str.startswith("coerce_dtype"), "column"])
    echo = cases["column"].isin(uncoercible) & ~cases["check"].str.startswith("coerce_dtype")
    return cases.loc[~echo].reset_index(drop=True)


def describe_failures(cases: pd.DataFrame, totals: dict[tuple, int] | None = None) -> str:
    """One line per failing column and check: what failed, on which data rows, with which values.
    `totals` counts the failing rows per (column, check) when `cases` holds only some of them
    (a large file read in chunks)."""
    lines = []
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        if check == "column_in_dataframe":
            missing = ", ".join(repr(name) for name in group["failure_case"])
            lines.append(f"missing column{'s' if len(group) > 1 else ''} {missing}")
            continue
        label = "column" if pd.notna(column) else "table"
        what = _readable_check(check)
        indexed = group[group["index"].notna()]
        if indexed.empty:
            lines.append(f"{label} {column!r}: {what}")
            continue
        rows = np.sort(indexed["index"].astype("int64").to_numpy()) + 1
        values = indexed.sort_values("index")["failure_case"].to_numpy()
        count = (totals or {}).get((column, check), len(rows))
        shown = [
            f"{row} ({value!r})"
            for row, value in zip(rows[:MAX_ROWS_NAMED], values[:MAX_ROWS_NAMED], strict=True)
        ]
        shown_count = min(len(rows), MAX_ROWS_NAMED)
        more = f" and {count - shown_count} more" if count > shown_count else ""
        lines.append(
            f"{label} {column!r}: {what} on {count} row(s): data rows {', '.join(shown)}{more}"
        )
    return "breaks the data contract — " + "; ".join(lines)


def _readable_check(check: str) -> str:
    if check.startswith("coerce_dtype"):
        return f"value of the wrong type ({check})"
    if check.startswith("dtype"):
        return f"column of the wrong type ({check})"
    if check == "not_nullable":
        return "blank where a value is required"
    if check.startswith("isin"):
        return f"value not allowed ({check})"
    if check == "field_uniqueness" or check.startswith("unique"):
        return "duplicated values"
    return check


@dataclass
class QualityFindings:
    """Counts of data-quality findings that do not reject a file, with a few examples each."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, name: str, mask: pd.Series, values: pd.Series) -> None:
        self.counts[name] = int(mask.sum())
        self.examples[name] = sorted({str(v) for v in values[mask].head(50)})[:5]

    def merge(self, other: QualityFindings) -> None:
        """Add another chunk's findings: counts add up, examples stay a few."""
        for name, count in other.counts.items():
            # Every chunk has the same header: extra columns are counted once.
            self.counts[name] = (
                count if name == "extra_columns" else self.counts.get(name, 0) + count
            )
            seen = self.examples.get(name, [])
            self.examples[name] = sorted({*seen, *map(str, other.examples.get(name, []))})[:5]


def quality_findings(raw: pd.DataFrame) -> QualityFindings:
    """Unknown category levels, out-of-range ages and bands, extra columns: warned, not rejected."""
    findings = QualityFindings()
    for column, levels in LEVELS.items():
        values = raw[column]
        findings.add(f"unknown_level_{column}", values.notna() & ~values.isin(list(levels)), values)
    age = raw["C_AGE"]
    findings.add("age_placeholder_122", age == AGE_PLACEHOLDER, age)
    implausible = (age < PLAUSIBLE_AGE[0]) | ((age > PLAUSIBLE_AGE[1]) & (age != AGE_PLACEHOLDER))
    findings.add("age_out_of_range", implausible, age)
    income = raw["INCM_TYP"]
    findings.add("income_band_unknown", income.notna() & ~income.isin(INCOME_BANDS), income)
    products = raw["NUM_PRD"]
    findings.add("num_prd_out_of_range", ~products.between(*NUM_PRD_RANGE), products)
    funds = raw["N_FUNDS"]
    findings.add("n_funds_out_of_range", funds.notna() & ~funds.between(*N_FUNDS_RANGE), funds)
    extra = [c for c in raw.columns if c not in RAW_COLUMNS]
    findings.counts["extra_columns"] = len(extra)
    findings.examples["extra_columns"] = extra[:5]
    return findings


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
