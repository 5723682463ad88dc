"""Run a pandera schema on a frame and say what failed for a person: `validate_frame` turns
pandera's failure cases into one `ContractViolation` whose message names the file, each failing
column and check, and the data rows (row 1 = first row under the header).

Kept apart from the schemas (lib/schemas.py) because every path that checks rows (the landing
runs, the ingest assets, the outcome files, the inference service) words its failures the same
way through `describe_failures`, `shown_value` and `readable_check`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pandera.pandas as pa

from affluent_assets.lib.contract import RAW_COLUMNS
from affluent_assets.lib.extract_checks import ExtractError

MAX_ROWS_NAMED = 10  # rows quoted per failing column and check; the rest are counted
REPEATED_HEADER = "repeated_header"
EMPTY_ROW = "empty_row"
CONTRACT_BROKEN = "breaks the data contract"


class ContractViolation(ExtractError):
    """An extract that breaks the data contract. `failures` holds pandera's failure cases."""

    def __init__(self, source: str, problem: str, failures: pd.DataFrame):
        self.failures = failures
        super().__init__(source, problem)


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
