"""Seeded synthetic ETB customer extract that follows the data contract (docs/data-contract.md).

How the rows are built: every customer gets one latent "engagement/wealth" score, shifted up for
AFFLUENT customers. Each column draws its own Gaussian latent that loads on that shared score plus
noise. A gap mask is the lowest-scoring share of each class (so per-class missing rates are exact),
category levels follow each class's level shares, and amounts map the rank of their latent onto a
quantile curve that reproduces the contract's ranges, medians and zero shares.

Because all columns lean on one score, they are redundant within a class, as in the real extract:
a good model reaches a holdout ROC-AUC near 0.88, not 0.99. `CLASS_SHIFT` is the hardness knob.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd
from openpyxl import Workbook

from affluent_assets.lib.contract import (
    AFFLUENT_SHARE,
    AGE_PLACEHOLDER,
    DATA_SHEET,
    DICTIONARY,
    LABEL,
    LEVELS,
    MISSING_RATES,
    NEGATIVE,
    POSITIVE,
    RAW_COLUMNS,
    REAL_EXTRACT_ROWS,
)

# Mean of the shared score for AFFLUENT minus NORMAL, in within-class standard deviations. Larger
# values make the columns less redundant and the label easier; 1.75 gives a holdout AUC near 0.88.
CLASS_SHIFT = 1.75

# (count, of which AFFLUENT) per code in the full extract; contract.LEVELS only covers text columns.
INCOME_LEVELS: dict[float, tuple[int, int]] = {
    1.0: (2424, 431),
    2.0: (9064, 1049),
    3.0: (5489, 746),
    4.0: (5867, 784),
    5.0: (5923, 912),
    6.0: (6493, 992),
    7.0: (1075, 118),
    8.0: (282, 43),
}
NUM_PRD_LEVELS: dict[int, tuple[int, int]] = {
    1: (23517, 976),
    2: (22286, 2459),
    3: (13209, 3963),
    4: (5000, 2277),
    5: (1604, 922),
    6: (378, 255),
    7: (76, 61),
    8: (12, 12),
    9: (1, 1),
}

# Quantile curves: (shares of non-missing rows, values at those shares). Amount curves are
# interpolated in asinh space, which behaves like a log scale but passes through zero and
# negatives; two knots at 0 give an exact-zero share. Count curves are interpolated in log space
# and floored.
Curve = tuple[tuple[float, ...], tuple[float, ...]]
AMOUNT_CURVES: dict[str, Curve] = {
    "PC": ((0, 0.032, 0.0321, 0.5, 1), (0, 0, 10_000, 50_000, 99_953)),
    "MTHCASA": (
        (0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1),
        (-150_000, 0, 180, 1_000, 4_143, 18_000, 55_000, 450_000, 6_500_000),
    ),
    "MAXCASA": (
        (0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1),
        (1, 170, 950, 4_015, 17_000, 52_000, 430_000, 6_400_000),
    ),
    "MINCASA": (
        (0, 0.035, 0.06, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1),
        (-209_405, 0, 0, 60, 600, 3_251, 14_000, 45_000, 380_000, 6_000_000),
    ),
    "DRvCR": (
        (0, 0.056, 0.06, 0.25, 0.5, 0.75, 0.95, 0.999, 1),
        (0, 0, 10, 600, 3_000, 14_000, 110_000, 2_500_000, 11_635_000),
    ),
    "MTHTD": (
        (0, 0.1, 0.25, 0.5, 0.75, 0.95, 0.999, 1),
        (798, 10_000, 25_000, 60_000, 150_000, 600_000, 4_000_000, 7_900_000),
    ),
    "MAXTD": (
        (0, 0.1, 0.25, 0.5, 0.75, 0.95, 0.999, 1),
        (798, 8_000, 20_000, 50_000, 130_000, 550_000, 3_800_000, 7_900_000),
    ),
    "Asset value": (
        (0, 0.36, 0.365, 0.5, 0.7, 0.9, 0.99, 1),
        (0, 0, 5, 1_040, 20_000, 150_000, 1_200_000, 7_940_000),
    ),
    "pur_price_avg": (
        (0, 0.25, 0.5, 0.75, 0.99, 1),
        (13_600, 55_000, 95_000, 160_000, 700_000, 1_410_000),
    ),
    "UT_AVE": ((0, 0.25, 0.5, 0.75, 0.99, 1), (10, 5_000, 20_000, 60_000, 800_000, 3_000_000)),
    "CC_AVE": (
        (0, 0.16, 0.17, 0.5, 0.75, 0.95, 0.999, 1),
        (0, 0, 10, 1_500, 4_000, 15_000, 80_000, 201_405),
    ),
    "ANN_TRN_AMT": ((0, 0.25, 0.5, 0.75, 0.99, 1), (5, 1_500, 6_000, 18_000, 200_000, 1_500_000)),
    "CC_LMT": ((0, 0.62, 0.621, 0.75, 0.9, 0.99, 1), (0, 0, 500, 8_000, 20_000, 80_000, 380_000)),
}
COUNT_CURVES: dict[str, Curve] = {
    "CASATD_CNT": (
        (0, 0.4, 0.68, 0.83, 0.91, 0.95, 0.98, 0.995, 0.9999, 1),
        (1, 2, 3, 4, 5, 6, 9, 15, 30, 40),
    ),
    "N_FUNDS": ((0, 0.45, 0.7, 0.83, 0.91, 0.95, 0.985, 1), (1, 2, 3, 4, 5, 6, 9, 15)),
}
AGE_CURVE: Curve = ((0, 0.1, 0.25, 0.5, 0.75, 0.9, 1), (18, 33, 42, 52, 62, 71, 99))

# AFFLUENT-minus-NORMAL gap of each value latent, in within-class standard deviations: how strongly
# an amount separates the classes. Tuned so correlation ratios land near the contract's.
VALUE_GAPS = {
    "C_AGE": 0.4,
    "CASATD_CNT": 1.4,
    "MTHCASA": 0.95,
    "DRvCR": 0.8,
    "MTHTD": 1.2,
    "Asset value": 1.5,
    "pur_price_avg": 0.3,
    "UT_AVE": 1.5,
    "N_FUNDS": 1.3,
    "CC_AVE": 0.15,
    "ANN_TRN_AMT": 0.15,
    "CC_LMT": 0.25,
}

# Card-transaction gaps are rarer among customers without CASA/TD accounts (card-only customers);
# this pull reproduces the ~20% of rows that miss deposits, loans, unit trusts and cards together.
CARD_ONLY_PULL = 1.3

PROBLEM_TEXT = (
    "Business problem: find hidden affluent customers among existing-to-bank (ETB) customers.",
    "Each row of the Data sheet is one customer; C_seg marks the current segment",
    "(AFFLUENT or NORMAL). Predict which NORMAL customers look affluent so that",
    "relationship managers can offer them the affluent proposition.",
    "Synthetic demo data: generated by affluent_assets.lib.demo_data, not real customers.",
)
DICTIONARY_HEADER = ("Feature", "Definition", "Remarks")

_STANDARD_NORMAL = NormalDist()


def generate_customers(n_rows: int = REAL_EXTRACT_ROWS, seed: int = 42) -> pd.DataFrame:
    """Return `n_rows` synthetic customers with the extract's 30 columns, types and quirks."""
    if n_rows < 1:
        raise ValueError(f"n_rows must be at least 1, got {n_rows}")
    rng = np.random.default_rng(seed)
    n_affluent = round(n_rows * AFFLUENT_SHARE)
    is_affluent = rng.permutation(np.arange(n_rows) < n_affluent)
    gen = _Generator(rng, is_affluent)

    data: dict[str, np.ndarray] = {
        "C_ID": _customer_ids(rng, n_rows),
        "C_AGE": _ages(gen),
        "PC": np.round(gen.amount("PC", gen.present("PC"), loading=0.0)),
    }
    for column in LEVELS:
        data[column] = gen.levels(LEVELS[column], gen.present(column), loading=0.0)
    data["INCM_TYP"] = gen.levels(INCOME_LEVELS, gen.present("INCM_TYP"), 0.0)
    everyone = np.ones(n_rows, dtype=bool)
    data["NUM_PRD"] = gen.levels(NUM_PRD_LEVELS, everyone, _ordinal_loading())
    data.update(_deposits(gen))
    data["Asset value"] = gen.amount("Asset value", everyone)
    data["HL_tag"] = _flag(gen.present("HL_tag"))
    data.update(_auto_loans(gen))
    data.update(_unit_trusts(gen))
    data["CC_AVE"] = gen.amount("CC_AVE", gen.present("CC_AVE"))
    data.update(_card_transactions(gen, casatd_missing=np.isnan(data["CASATD_CNT"])))
    data["CC_LMT"] = np.round(gen.amount("CC_LMT", gen.present("CC_LMT")), -2)
    data[LABEL] = np.where(is_affluent, POSITIVE, NEGATIVE).astype(object)

    frame = pd.DataFrame({column: data[column] for column in RAW_COLUMNS})
    dtypes = {"int": "int64", "float": "float64", "text": "object"}
    return frame.astype({column: dtypes[kind] for column, kind in RAW_COLUMNS.items()})


def write_extract(df: pd.DataFrame, path: str | Path) -> Path:
    """Write `df` as .csv, .parquet or the bank's three-sheet .xlsx workbook; return the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".xlsx"):
        raise ValueError(f"{path}: unknown extract format {suffix!r}; use .csv, .parquet or .xlsx")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        df.to_csv(path, index=False, encoding="utf-8")
    elif suffix == ".parquet":
        df.to_parquet(path, index=False)
    else:
        _write_workbook(df, path)
    return path


def write_demo_csv(path: str | Path, rows: int, seed: int = 42, chunk_rows: int = 250_000) -> Path:
    """An N-row contract-true CSV written chunk by chunk (seeds seed, seed+1, ...), so a file of
    any size is made in bounded memory. C_ID repeats across chunks, as the contract allows."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    types = {"int": pa.int64(), "float": pa.float64(), "text": pa.string()}
    schema = pa.schema([(name, types[kind]) for name, kind in RAW_COLUMNS.items()])
    with pacsv.CSVWriter(str(path), schema) as writer:
        for number, start in enumerate(range(0, rows, chunk_rows)):
            frame = generate_customers(min(chunk_rows, rows - start), seed=seed + number)
            writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
    return path


class _Generator:
    """Draws latents that share one per-customer score and maps them onto contract marginals."""

    def __init__(self, rng: np.random.Generator, is_affluent: np.ndarray) -> None:
        self.rng = rng
        self.is_affluent = is_affluent
        self.score = rng.normal(np.where(is_affluent, CLASS_SHIFT, 0.0), 1.0)

    def latent(self, loading: float) -> np.ndarray:
        """Standard-normal-within-class latent with correlation `loading` to the shared score."""
        noise = self.rng.standard_normal(self.score.size)
        return loading * self.score + np.sqrt(1.0 - loading**2) * noise

    def classes(self) -> list[tuple[np.ndarray, int]]:
        """(row mask, index into a MISSING_RATES entry) for NORMAL (1) and AFFLUENT (2)."""
        return [(~self.is_affluent, 1), (self.is_affluent, 2)]

    def present(self, column: str, latent: np.ndarray | None = None) -> np.ndarray:
        """Non-missing mask with the contract's exact per-class missing rate for `column`."""
        rates = MISSING_RATES[column]
        if latent is None:
            latent = self.latent(_gap_loading(rates[1], rates[2]))
        missing = np.zeros(self.score.size, dtype=bool)
        for rows, rate_index in self.classes():
            missing |= _lowest(latent, rows, round(rows.sum() * rates[rate_index]))
        return ~missing

    def levels(self, counts: dict, present: np.ndarray, loading: float) -> np.ndarray:
        """Levels drawn with each class's shares; higher latent -> later level (ordinal codes)."""
        latent = self.latent(loading)
        values = np.array(list(counts), dtype=object)
        totals = np.array([total for total, _ in counts.values()], dtype=float)
        affluent = np.array([aff for _, aff in counts.values()], dtype=float)
        out = np.full(self.score.size, np.nan, dtype=object)
        for rows, rate_index in self.classes():
            class_counts = affluent if rate_index == 2 else totals - affluent
            cumulative = np.cumsum(class_counts) / class_counts.sum()
            chosen = rows & present
            share = _rank_share(latent, chosen)[chosen]
            picks = np.minimum(np.searchsorted(cumulative, share, side="right"), values.size - 1)
            out[chosen] = values[picks]
        return out

    def amount(self, column: str, present: np.ndarray, loading: float | None = None) -> np.ndarray:
        """Amounts on the column's quantile curve, ordered by a latent that tracks the class."""
        if loading is None:
            loading = _value_loading(column)
        return self.from_latent(AMOUNT_CURVES[column], self.latent(loading), present)

    def count(self, column: str, present: np.ndarray) -> np.ndarray:
        """Counts (1 upwards) on the column's count curve."""
        latent = self.latent(_value_loading(column))
        share = _rank_share(latent, present)
        knots, values = COUNT_CURVES[column]
        counts = np.floor(np.exp(np.interp(share, knots, np.log(values))))
        return np.where(present, counts, np.nan)

    def from_latent(self, curve: Curve, latent: np.ndarray, present: np.ndarray) -> np.ndarray:
        """Map the rank of `latent` among present rows onto `curve`; NaN elsewhere."""
        knots, values = curve
        share = _rank_share(latent, present)
        amounts = np.round(np.sinh(np.interp(share, knots, np.arcsinh(values))), 2)
        return np.where(present, amounts, np.nan)


def _gap_loading(normal_rate: float, affluent_rate: float) -> float:
    """Loading that makes one threshold on the latent give both classes their missing rates."""
    gap = _probit(normal_rate) - _probit(affluent_rate)
    return float(np.clip(gap / CLASS_SHIFT, -0.95, 0.95))


def _value_loading(column: str) -> float:
    return float(np.clip(VALUE_GAPS[column] / CLASS_SHIFT, -0.95, 0.95))


def _ordinal_loading() -> float:
    """Loading for NUM_PRD: average probit gap between the class CDFs at the inner cut points."""
    totals = np.array([total for total, _ in NUM_PRD_LEVELS.values()], dtype=float)
    affluent = np.array([aff for _, aff in NUM_PRD_LEVELS.values()], dtype=float)
    normal_cdf = np.cumsum(totals - affluent) / (totals - affluent).sum()
    affluent_cdf = np.cumsum(affluent) / affluent.sum()
    inner = (normal_cdf > 0.01) & (normal_cdf < 0.99) & (affluent_cdf > 0.01)
    gaps = [
        _probit(n) - _probit(a) for n, a in zip(normal_cdf[inner], affluent_cdf[inner], strict=True)
    ]
    return float(np.clip(np.mean(gaps) / CLASS_SHIFT, 0.0, 0.95))


def _probit(p: float) -> float:
    return _STANDARD_NORMAL.inv_cdf(min(max(p, 1e-6), 1 - 1e-6))


def _lowest(latent: np.ndarray, rows: np.ndarray, count: int) -> np.ndarray:
    """Mask of the `count` rows within `rows` that have the lowest latent."""
    index = np.flatnonzero(rows)
    chosen = np.zeros(latent.size, dtype=bool)
    chosen[index[np.argsort(latent[index], kind="stable")[:count]]] = True
    return chosen


def _rank_share(latent: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Mid-rank of `latent` within `rows` as a share in (0, 1); 0 outside `rows`."""
    index = np.flatnonzero(rows)
    share = np.zeros(latent.size)
    order = np.argsort(latent[index], kind="stable")
    share[index[order]] = (np.arange(index.size) + 0.5) / max(index.size, 1)
    return share


def _flag(present: np.ndarray) -> np.ndarray:
    """Loan flags are 1.0 or blank in the extract, never 0."""
    return np.where(present, 1.0, np.nan)


def _customer_ids(rng: np.random.Generator, n_rows: int) -> np.ndarray:
    """IDs drawn with replacement from 0..99,996 (repeats are different people); 0 exactly twice."""
    ids = rng.integers(1, 99_997, size=n_rows)
    if n_rows >= 2:
        ids[rng.choice(n_rows, size=2, replace=False)] = 0
    return ids


def _ages(gen: _Generator) -> np.ndarray:
    """Ages 18-99 (AFFLUENT older), plus the extract's placeholder 122 and single ages 2 and 12."""
    n_rows = gen.score.size
    everyone = np.ones(n_rows, dtype=bool)
    knots, values = AGE_CURVE
    share = _rank_share(gen.latent(_value_loading("C_AGE")), everyone)
    ages = np.round(np.interp(share, knots, values)).astype(np.int64)
    n_placeholder = max(round(n_rows * 58 / REAL_EXTRACT_ROWS), 1 if n_rows >= 500 else 0)
    oddities = [AGE_PLACEHOLDER] * n_placeholder + ([2, 12] if n_rows >= 1000 else [])
    ages[gen.rng.choice(n_rows, size=len(oddities), replace=False)] = oddities
    return ages


def _deposits(gen: _Generator) -> dict[str, np.ndarray]:
    """CASA trio and TD pair with their own masks; CASATD_CNT is blank only when both are."""
    casa_present = gen.present("MTHCASA")
    td_latent = gen.latent(_gap_loading(*MISSING_RATES["MTHTD"][1:]))
    td_missing = np.zeros(casa_present.size, dtype=bool)
    for rows, rate_index in gen.classes():
        size = rows.sum()
        both = round(size * MISSING_RATES["CASATD_CNT"][rate_index])
        td_only = round(size * MISSING_RATES["MTHTD"][rate_index]) - both
        td_missing |= _lowest(td_latent, rows & ~casa_present, both)
        td_missing |= _lowest(td_latent, rows & casa_present, td_only)
    td_present = ~td_missing
    any_account = casa_present | td_present

    casa_latent = gen.latent(_value_loading("MTHCASA"))
    td_value_latent = gen.latent(_value_loading("MTHTD"))
    # Someone holding both CASA and TD has at least two accounts.
    accounts = np.where(casa_present & td_present, 2.0, 1.0)
    counts = np.fmax(gen.count("CASATD_CNT", any_account), accounts)
    columns = {
        "CASATD_CNT": np.where(any_account, counts, np.nan),
        "MTHCASA": gen.from_latent(AMOUNT_CURVES["MTHCASA"], casa_latent, casa_present),
        "DRvCR": np.round(gen.amount("DRvCR", gen.present("DRvCR"))),
        "MTHTD": gen.from_latent(AMOUNT_CURVES["MTHTD"], td_value_latent, td_present),
    }
    # Max and min balances track the monthly average closely but not perfectly.
    for column, base, present in (
        ("MAXCASA", casa_latent, casa_present),
        ("MINCASA", casa_latent, casa_present),
        ("MAXTD", td_value_latent, td_present),
    ):
        latent = 0.95 * base + 0.3 * gen.rng.standard_normal(base.size)
        columns[column] = gen.from_latent(AMOUNT_CURVES[column], latent, present)
    return columns


def _auto_loans(gen: _Generator) -> dict[str, np.ndarray]:
    present = gen.present("AL_tag")
    return {
        "AL_tag": _flag(present),
        "pur_price_avg": np.round(gen.amount("pur_price_avg", present), -2),
    }


def _unit_trusts(gen: _Generator) -> dict[str, np.ndarray]:
    """Unit-trust average, maximum (never below the average) and number of funds, one mask."""
    present = gen.present("UT_AVE")
    average = gen.amount("UT_AVE", present)
    peak_ratio = np.exp(np.abs(gen.rng.normal(0.0, 0.3, present.size)))
    return {
        "UT_AVE": average,
        "MAXUT": np.round(average * peak_ratio, 2),
        "N_FUNDS": gen.count("N_FUNDS", present),
    }


def _card_transactions(gen: _Generator, casatd_missing: np.ndarray) -> dict[str, np.ndarray]:
    """Card amounts and count with one mask; AVG_TRN_AMT is ANN_TRN_AMT / 12 exactly."""
    latent = gen.latent(0.0) + CARD_ONLY_PULL * casatd_missing
    present = gen.present("ANN_TRN_AMT", latent=latent)
    annual = gen.amount("ANN_TRN_AMT", present)
    average = annual / 12
    size = present.size
    # Busiest month lies between the average and the whole year; quietest between 0 and average.
    # Rounding to cents away from the average keeps that order.
    busiest = np.minimum(
        np.ceil(average * (1 + 11 * gen.rng.beta(1.2, 6.0, size)) * 100) / 100, annual
    )
    quietest = np.floor(average * gen.rng.beta(0.8, 1.5, size) * 100) / 100
    ticket = np.exp(gen.rng.normal(np.log(80.0), 0.6, size))
    # At most about ten card transactions a day.
    n_trx = np.where(present, np.clip(np.round(annual / ticket), 1.0, 3650.0), np.nan)
    return {
        "MAX_MTH_TRN_AMT": busiest,
        "MIN_MTH_TRN_AMT": quietest,
        "AVG_TRN_AMT": average,
        "ANN_TRN_AMT": annual,
        "ANN_N_TRX": n_trx,
    }


def _write_workbook(df: pd.DataFrame, path: Path) -> None:
    """Problem text, the `Data` sheet and the data dictionary, like the bank's workbook."""
    # A write-only workbook streams rows: about 4x faster than pandas' ExcelWriter, which cannot
    # use openpyxl's write-only mode.
    book = Workbook(write_only=True)
    problem = book.create_sheet("Problem")
    for line in PROBLEM_TEXT:
        problem.append([line])
    data = book.create_sheet(DATA_SHEET)
    data.append(list(df.columns))
    cells = df.astype(object).where(df.notna(), None)
    for row in cells.itertuples(index=False, name=None):
        data.append(row)
    dictionary = book.create_sheet("Dictionary")
    dictionary.append(DICTIONARY_HEADER)
    for entry in DICTIONARY:
        dictionary.append(entry)
    book.save(path)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic ETB customer extract.")
    parser.add_argument("--rows", type=int, default=REAL_EXTRACT_ROWS, help="number of customers")
    parser.add_argument("--seed", type=int, default=42, help="random seed")
    parser.add_argument(
        "--out", type=Path, default=Path("data/raw/etb_demo.xlsx"), help=".xlsx, .csv or .parquet"
    )
    args = parser.parse_args(argv)
    path = write_extract(generate_customers(args.rows, args.seed), args.out)
    print(f"wrote {path} ({args.rows} rows)")


if __name__ == "__main__":
    main()
