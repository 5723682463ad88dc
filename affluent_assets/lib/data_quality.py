"""Data-quality findings that real extracts have (unknown levels, placeholder ages, rows repeated
exactly): not violations of the contract, so they never reject a file. `quality_findings` counts
them for the non-blocking `data_quality` check, and `quality_warnings` words them for the person
who handed in the file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from affluent_assets.lib.contract import (
    AGE_PLACEHOLDER,
    DOCUMENTED_RANGES,
    GAP_BLOCKS,
    INCOME_BANDS,
    LEVELS,
    N_FUNDS_RANGE,
    NUM_PRD_RANGE,
    PLAUSIBLE_AGE,
    RAW_COLUMNS,
)
from affluent_assets.lib.features import floats
from affluent_assets.lib.levels import factorized
from affluent_assets.lib.validation import MAX_ROWS_NAMED, shown_value

DUPLICATE_ROWS = "duplicate_rows"


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

    def add(self, name: str, mask, values: pd.Series | None = None) -> None:
        """Count the rows of `mask` (a boolean Series or array, in `values`' row order); the
        examples are their values, or (without `values`) their data row numbers."""
        hits = np.asarray(mask, dtype=bool)
        self._counts[name] = int(np.count_nonzero(hits))
        if not self._counts[name]:  # the common case: no example to find
            self._examples[name] = []
            return
        if values is None:
            rows = mask.index[hits][:5] + 1
            self._examples[name] = [f"data row {row}" for row in rows]
            return
        self._examples[name] = sorted({str(v) for v in values[hits].head(50)})[:5]

    def add_rows(self, frame: pd.DataFrame) -> None:
        """Keep the rows' hashes (indexed by their positions in the file) to find repeats."""
        hashes = _row_hashes(frame)
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


def _row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each row's values: equal rows hash equal. A text column is hashed by
    its levels (factorized once for the chunk, lib/levels), a blank as pandas hashes one."""
    hashes = np.zeros(len(frame), dtype="uint64")
    for name in frame.columns:
        values = frame[name].to_numpy()
        if values.dtype == object:
            codes, levels = factorized(values)
            column = np.append(pd.util.hash_array(levels), _BLANK_HASH)[codes]
        else:
            column = pd.util.hash_array(values)
        hashes = hashes * _MIX ^ column  # unsigned: wraps around, as a hash should
    return hashes


_MIX = np.uint64(0x100000001B3)  # FNV's 64-bit prime: mixes the columns in their order
_BLANK_HASH = np.uint64(0xFFFFFFFFFFFFFFFF)


def quality_findings(raw: pd.DataFrame) -> QualityFindings:
    """Unknown category levels, out-of-range ages and bands, extra columns: warned, not rejected."""
    findings = QualityFindings()
    for column, levels in LEVELS.items():
        values = raw[column]
        findings.add(f"unknown_level_{column}", _unknown_levels(values, levels), values)
    age = raw["C_AGE"]
    years = floats(age)
    findings.add("age_placeholder_122", years == AGE_PLACEHOLDER, age)
    # Minors hold accounts: the contract documents rows at ages 2 and 12 (info, not a warning).
    findings.add("age_under_18", (years >= 0) & (years < PLAUSIBLE_AGE[0]), age)
    implausible = (years < 0) | ((years > PLAUSIBLE_AGE[1]) & (years != AGE_PLACEHOLDER))
    findings.add("age_out_of_range", implausible, age)
    income = raw["INCM_TYP"]
    bands = floats(income)
    findings.add("income_band_unknown", ~np.isnan(bands) & ~np.isin(bands, INCOME_BANDS), income)
    products = raw["NUM_PRD"]
    findings.add("num_prd_out_of_range", ~_within(floats(products), *NUM_PRD_RANGE), products)
    funds = raw["N_FUNDS"]
    findings.add("n_funds_out_of_range", _outside(floats(funds), *N_FUNDS_RANGE), funds)
    _documented_rules(findings, raw)
    extra = [c for c in raw.columns if c not in RAW_COLUMNS]
    findings._counts["extra_columns"] = len(extra)
    findings._examples["extra_columns"] = extra[:5]
    findings.add_rows(raw.drop(columns=extra) if extra else raw)
    return findings


def _within(numbers: np.ndarray, low, high) -> np.ndarray:
    return (numbers >= low) & (numbers <= high)


def _outside(numbers: np.ndarray, low, high) -> np.ndarray:
    """Filled in and out of [low, high]: NaN compares false both ways, so blanks are not."""
    return (numbers < low) | (numbers > high)


def _unknown_levels(values: pd.Series, levels) -> np.ndarray:
    """Filled in with a level the contract does not list. A chunk holds a few distinct
    levels in many rows, so they are looked at first, and rows only when one is unknown."""
    codes, distinct = factorized(values)  # blanks are no level: code -1
    unknown = np.array([level not in levels for level in distinct.tolist()] + [False])
    if not unknown.any():
        return np.zeros(len(values), dtype=bool)
    return unknown[codes]


def _documented_rules(findings: QualityFindings, raw: pd.DataFrame) -> None:
    """The contract's other documented facts, as warnings: each column's range, the gap blocks
    that share one mask, and AVG_TRN_AMT = ANN_TRN_AMT / 12."""
    for column, (low, high) in DOCUMENTED_RANGES.items():
        values = raw[column]
        findings.add(f"out_of_range_{column}", _outside(floats(values), low, high), values)
    for block, columns in GAP_BLOCKS.items():
        blanks = [raw[column].isna().to_numpy() for column in columns]
        some, every = np.logical_or.reduce(blanks), np.logical_and.reduce(blanks)
        findings.add(f"gap_block_{block}", pd.Series(some & ~every, index=raw.index))
    average, annual = raw["AVG_TRN_AMT"], raw["ANN_TRN_AMT"]
    # "exactly" up to the cents a file is saved with; a blank on either side is no finding
    off = np.abs(floats(average) - floats(annual) / 12) > 0.006
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
