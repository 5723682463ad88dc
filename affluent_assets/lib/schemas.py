"""pandera schemas for each step: the raw extract (the contract), clean customers, features, scores.

`validate_frame` turns pandera's failure cases into one `ContractViolation` whose message names
the file, each failing column and check, and the data rows (row 1 = first row under the header).
Data-quality findings that real extracts have (unknown levels, placeholder ages, rows repeated
exactly) are not violations: `quality_findings` counts them for a non-blocking check.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pandera.pandas as pa

from affluent_assets.lib.contract import (
    AGE_PLACEHOLDER,
    COUNT_COLUMNS,
    DOCUMENTED_RANGES,
    GAP_BLOCKS,
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
from affluent_assets.lib.extract_checks import CONTROL_CHARACTERS, ExtractError
from affluent_assets.lib.features import (
    CATEGORICAL_FEATURES,
    CLEAN_COLUMN_NAMES,
    FLAG_FEATURES,
    NUMERIC_FEATURES,
)

MAX_ROWS_NAMED = 10  # rows quoted per failing column and check; the rest are counted
CONTROL_CHECK = "no_control_characters"
REPEATED_HEADER = "repeated_header"
EMPTY_ROW = "empty_row"
DUPLICATE_ROWS = "duplicate_rows"
CONTRACT_BROKEN = "breaks the data contract"


class ContractViolation(ExtractError):
    """An extract that breaks the data contract. `failures` holds pandera's failure cases."""

    def __init__(self, source: str, problem: str, failures: pd.DataFrame):
        self.failures = failures
        super().__init__(source, problem)


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


def validate_frame(
    schema: pa.DataFrameSchema, frame: pd.DataFrame, source: str, broken: str = CONTRACT_BROKEN
) -> pd.DataFrame:
    """The validated (coerced) frame, or ContractViolation naming source, columns and rows
    (data row n = the n-th row under the header, i.e. frame position n - 1). A header line
    repeated among the rows is reported as such, and the rest checked without it. `broken`
    opens the message: what the file breaks."""
    found = []
    headers = _repeated_header_rows(frame)
    if len(headers):
        found.append(_header_cases(headers, "header", REPEATED_HEADER, "the header line"))
        frame = frame.drop(index=headers)
    empty = _empty_rows(frame) if schema.name == "raw_extract" else frame.index[:0]
    if len(empty):
        # Said once per row, not as a blank in every required column of it.
        found.append(_header_cases(empty, "row", EMPTY_ROW, "no value in any column"))
        frame = frame.drop(index=empty)
    try:
        # inplace: coercion replaces the frame's own columns instead of copying all of them
        valid = schema.validate(frame, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as exc:
        found.append(_useful_failure_cases(exc.failure_cases))
    if not found:
        return valid
    cases = pd.concat(found, ignore_index=True) if len(found) > 1 else found[0]
    raise ContractViolation(source, describe_failures(cases, broken=broken), cases) from None


def _repeated_header_rows(frame: pd.DataFrame) -> pd.Index:
    """Rows where most contract columns hold a contract column's name: the header again, as in
    files concatenated. Only a numeric column read as text can hold a name, so a good chunk
    costs a dtype test per column."""
    present = [c for c in RAW_COLUMNS if c in frame.columns]
    if not any(RAW_COLUMNS[c] != "text" and frame[c].dtype == object for c in present):
        return frame.index[:0]
    names = list(RAW_COLUMNS)
    hits = sum(frame[c].isin(names).to_numpy(dtype="int64") for c in present)
    return frame.index[hits * 2 > len(present)]


def _empty_rows(frame: pd.DataFrame) -> pd.Index:
    """Rows with no value in any contract column (a sheet's used range often runs past the
    table, in rows of empty cells or of cells holding empty text)."""
    present = [c for c in RAW_COLUMNS if c in frame.columns]
    empty = np.ones(len(frame), dtype=bool)
    for column in present:  # column by column: selecting them all would copy the chunk
        empty &= frame[column].isna().to_numpy()
        if not empty.any():
            break
    return frame.index[empty] if present else frame.index[:0]


def _header_cases(rows: pd.Index, column: str, check: str, case: str) -> pd.DataFrame:
    """Failure cases of a whole row (a repeated header, an empty row), as pandera's look."""
    return pd.DataFrame(
        {
            "schema_context": "DataFrameSchema",
            "column": column,  # a string, not NaN: a (column, check) key must equal itself
            "check": check,
            "check_number": None,
            "failure_case": case,
            "index": rows,
        }
    )


def _useful_failure_cases(cases: pd.DataFrame) -> pd.DataFrame:
    # A column whose values could not be coerced also fails every later check with a TypeError
    # on the whole column; those echoes add nothing, so they are dropped.
    cases = cases.copy()
    cases["check"] = cases["check"].astype(str)
    uncoercible = set(cases.loc[cases["check"].str.startswith("coerce_dtype"), "column"])
    echo = cases["column"].isin(uncoercible) & ~cases["check"].str.startswith("coerce_dtype")
    cases = cases.loc[~echo]
    # Each column and check's rows ascending, so the first cases kept of a chunk are its first rows.
    group = cases.groupby(["column", "check"], dropna=False, sort=False).ngroup()
    order = np.lexsort((cases["index"].to_numpy(dtype="float64"), group.to_numpy()))
    return cases.iloc[order].reset_index(drop=True)


def describe_failures(
    cases: pd.DataFrame, totals: dict[tuple, int] | None = None, broken: str = CONTRACT_BROKEN
) -> str:
    """One line per failing column and check: what failed, on which data rows (ascending, the
    first MAX_ROWS_NAMED named, the rest counted), with which values. `totals` counts the failing
    rows per (column, check) when `cases` holds only some of them (a file read in chunks)."""
    lines = []
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        lines.append(_describe_group(column, check, group, (totals or {}).get((column, check))))
    return f"{broken} — " + "; ".join(lines)


def _describe_group(column, check: str, group: pd.DataFrame, total: int | None) -> str:
    if check == "column_in_dataframe":
        missing = ", ".join(repr(name) for name in group["failure_case"])
        return f"missing column{'s' if len(group) > 1 else ''} {missing}"
    label = "column" if pd.notna(column) else "table"
    what = readable_check(check)
    indexed = group[group["index"].notna()].sort_values("index", kind="stable")
    if indexed.empty:
        return f"{label} {column!r}: {what}"
    rows = indexed["index"].astype("int64").to_numpy()[:MAX_ROWS_NAMED] + 1
    count = total if total is not None else len(indexed)
    more = f" and {count - len(rows)} more" if count > len(rows) else ""
    if check == REPEATED_HEADER:
        listed = ", ".join(map(str, rows))
        return f"the header line is repeated at data rows {listed}{more} (files concatenated?)"
    if check == EMPTY_ROW:
        return (
            f"{count} empty row(s), with no value in any column (cells blank or holding only "
            f"empty text): data rows {_spans(rows)}{more}; delete them"
        )
    values = indexed["failure_case"].to_numpy()[:MAX_ROWS_NAMED]
    shown = ", ".join(f"{row} ({shown_value(v)})" for row, v in zip(rows, values, strict=True))
    return f"{label} {column!r}: {what} on {count} row(s): data rows {shown}{more}"


def shown_value(value) -> str:
    """A value as a person would type it in the file: text quoted (control characters
    escaped), whole numbers without a trailing `.0`, never a numpy repr."""
    if isinstance(value, str):
        return repr(value)
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return "blank"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)
    return repr(value)


def _spans(rows) -> str:
    """Ascending row numbers with runs shortened: `6-25, 30`."""
    spans: list[list[int]] = []
    for row in map(int, rows):
        if spans and row == spans[-1][1] + 1:
            spans[-1][1] = row
        else:
            spans.append([row, row])
    return ", ".join(f"{a}-{b}" if b > a else str(a) for a, b in spans)


def readable_check(check: str) -> str:
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


class QualityFindings:
    """Counts of data-quality findings that do not reject a file, with a few examples each.

    `duplicate_rows` counts rows whose contract columns repeat an earlier row of the file
    exactly (C_ID alone may repeat: different customers share numbers); its examples are the
    first of those data rows. Each row's 64-bit hash is kept (8 bytes a row), so a repeat is
    found across chunks; the hashes are compared when the counts are read (10M rows: ~0.9 s)."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._examples: dict[str, list] = {}
        self._row_hashes: list[pd.Series] = []
        self._settled = True

    @property
    def counts(self) -> dict[str, int]:
        self._settle()
        return self._counts

    @property
    def examples(self) -> dict[str, list]:
        self._settle()
        return self._examples

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, name: str, mask: pd.Series, values: pd.Series | None = None) -> None:
        """Count the rows of `mask`; the examples are their values, or (without `values`)
        their data row numbers."""
        self._counts[name] = int(mask.sum())
        if values is None:
            rows = mask.index[mask.to_numpy()][:5] + 1
            self._examples[name] = [f"data row {row}" for row in rows]
            return
        self._examples[name] = sorted({str(v) for v in values[mask].head(50)})[:5]

    def add_rows(self, frame: pd.DataFrame) -> None:
        """Keep the rows' hashes (indexed by their positions in the file) to find repeats."""
        hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
        self._row_hashes.append(pd.Series(hashes, index=frame.index, copy=False))
        self._settled = False

    def merge(self, other: QualityFindings) -> None:
        """Add another chunk's findings: counts add up, examples stay a few; repeated rows are
        counted over every row merged, whichever chunk holds them."""
        for name, count in other._counts.items():
            if name == DUPLICATE_ROWS:
                continue
            # Every chunk has the same header: extra columns are counted once.
            self._counts[name] = (
                count if name == "extra_columns" else self._counts.get(name, 0) + count
            )
            seen = self._examples.get(name, [])
            self._examples[name] = sorted({*seen, *map(str, other._examples.get(name, []))})[:5]
        self._row_hashes.extend(other._row_hashes)
        self._settled = False

    def _settle(self) -> None:
        if self._settled:
            return
        self._settled = True
        if not self._row_hashes:
            return
        hashes = np.concatenate([part.to_numpy() for part in self._row_hashes])
        hashes.sort()  # in place: a sorted copy is the only memory the count takes
        repeats = int(np.count_nonzero(hashes[1:] == hashes[:-1]))
        del hashes
        self._counts[DUPLICATE_ROWS] = repeats
        self._examples[DUPLICATE_ROWS] = self._first_repeats() if repeats else []

    def _first_repeats(self) -> list[str]:
        """The first data rows that repeat an earlier row (only when some do)."""
        return [f"data row {row + 1}" for row in self._repeats()[:MAX_ROWS_NAMED]]

    def _repeats(self) -> np.ndarray:
        every = pd.concat(self._row_hashes) if len(self._row_hashes) > 1 else self._row_hashes[0]
        return np.sort(every.index[every.duplicated(keep="first").to_numpy()].to_numpy())

    def repeated_rows(self) -> np.ndarray:
        """Positions in the file (0 = data row 1) of every row that repeats an earlier one."""
        if not self.counts.get(DUPLICATE_ROWS):
            return np.empty(0, dtype="int64")
        return self._repeats()


def quality_findings(raw: pd.DataFrame) -> QualityFindings:
    """Unknown category levels, out-of-range ages and bands, extra columns: warned, not rejected."""
    findings = QualityFindings()
    for column, levels in LEVELS.items():
        values = raw[column]
        findings.add(f"unknown_level_{column}", values.notna() & ~values.isin(list(levels)), values)
    age = raw["C_AGE"]
    findings.add("age_placeholder_122", age == AGE_PLACEHOLDER, age)
    # Minors hold accounts: the contract documents rows at ages 2 and 12 (info, not a warning).
    findings.add("age_under_18", (age >= 0) & (age < PLAUSIBLE_AGE[0]), age)
    implausible = (age < 0) | ((age > PLAUSIBLE_AGE[1]) & (age != AGE_PLACEHOLDER))
    findings.add("age_out_of_range", implausible, age)
    income = raw["INCM_TYP"]
    findings.add("income_band_unknown", income.notna() & ~income.isin(INCOME_BANDS), income)
    products = raw["NUM_PRD"]
    findings.add("num_prd_out_of_range", ~products.between(*NUM_PRD_RANGE), products)
    funds = raw["N_FUNDS"]
    findings.add("n_funds_out_of_range", funds.notna() & ~funds.between(*N_FUNDS_RANGE), funds)
    _documented_rules(findings, raw)
    extra = [c for c in raw.columns if c not in RAW_COLUMNS]
    findings._counts["extra_columns"] = len(extra)
    findings._examples["extra_columns"] = extra[:5]
    findings.add_rows(raw.drop(columns=extra) if extra else raw)
    return findings


def _documented_rules(findings: QualityFindings, raw: pd.DataFrame) -> None:
    """The contract's other documented facts, as warnings: each column's range, the gap blocks
    that share one mask, and AVG_TRN_AMT = ANN_TRN_AMT / 12."""
    for column, (low, high) in DOCUMENTED_RANGES.items():
        values = raw[column]
        findings.add(f"out_of_range_{column}", values.notna() & ~values.between(low, high), values)
    for block, columns in GAP_BLOCKS.items():
        blanks = [raw[column].isna().to_numpy() for column in columns]
        some, every = np.logical_or.reduce(blanks), np.logical_and.reduce(blanks)
        findings.add(f"gap_block_{block}", pd.Series(some & ~every, index=raw.index))
    average, annual = raw["AVG_TRN_AMT"], raw["ANN_TRN_AMT"]
    # "exactly" up to the cents a file is saved with
    off = average.notna() & annual.notna() & ((average - annual / 12).abs() > 0.006)
    findings.add("avg_trn_amt_not_annual_over_12", off, average)


# What each finding means, for the person who handed in the file (`quality_warnings`).
FINDING_TEXTS = {
    DUPLICATE_ROWS: "row(s) repeat an earlier row exactly (scored, but listed once on the call "
    "list)",
    "extra_columns": "column(s) the contract does not have (ignored)",
    "age_out_of_range": "C_AGE below 0 or above 100 (other than the placeholder 122)",
    "income_band_unknown": "INCM_TYP outside the bands 1-8",
    "num_prd_out_of_range": "NUM_PRD outside 1-9",
    "n_funds_out_of_range": "N_FUNDS outside 1-14",
    "avg_trn_amt_not_annual_over_12": "AVG_TRN_AMT is not ANN_TRN_AMT / 12",
}


def _finding_text(name: str) -> str:
    if name in FINDING_TEXTS:
        return FINDING_TEXTS[name]
    if name.startswith("unknown_level_"):
        return f"{name.removeprefix('unknown_level_')} level(s) the contract does not list"
    if name.startswith("out_of_range_"):
        column = name.removeprefix("out_of_range_")
        low, high = DOCUMENTED_RANGES[column]
        return f"{column} outside the contract's range {low:,.0f} to {high:,.0f}"
    if name.startswith("gap_block_"):
        columns = GAP_BLOCKS[name.removeprefix("gap_block_")]
        return f"row(s) with only some of {', '.join(columns)} blank (they share one gap)"
    return name


def _example(text: str) -> str:
    try:
        return shown_value(float(text))
    except ValueError:
        return text if text.startswith("data row") else repr(text)


def quality_warnings(counts: dict[str, int], examples: dict[str, list], skip=()) -> list[str]:
    """One sentence per data-quality finding: how many rows, what, and a few examples, as the
    person who handed in the file reads them (the CLI, the page and the API show these)."""
    lines = []
    for name, count in counts.items():
        if not count or name in skip:
            continue
        shown = ", ".join(_example(str(e)) for e in examples.get(name, []))
        lines.append(f"{count:,} × {_finding_text(name)}" + (f" (e.g. {shown})" if shown else ""))
    return lines


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
