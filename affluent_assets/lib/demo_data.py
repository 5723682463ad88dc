"""Seeded synthetic ETB customer extract that follows the data contract (docs/data-contract.md).

How the rows are built: every customer gets one latent "engagement/wealth" score, shifted up for
AFFLUENT customers. Each column draws its own Gaussian latent that loads on that shared score plus
noise. A gap mask is the lowest-scoring share of each class (so per-class missing rates are exact),
category levels follow each class's level shares, and amounts map the rank of their latent onto a
quantile curve that reproduces the contract's ranges, medians and zero shares.

Because all columns lean on one score, they are redundant within a class, as in the real extract:
a good model reaches a holdout ROC-AUC near 0.88, not 0.99. `CLASS_SHIFT` is the hardness knob.

The figures the rows reproduce are in lib/demo_calibration.py; writing a table as the bank's
files is lib/demo_files.py's (`main` here writes a demo extract from the command line).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd

from affluent_assets.lib.contract import (
    AFFLUENT_SHARE,
    AGE_PLACEHOLDER,
    LABEL,
    LEVELS,
    MISSING_RATES,
    NEGATIVE,
    POSITIVE,
    RAW_COLUMNS,
    REAL_EXTRACT_ROWS,
)
from affluent_assets.lib.demo_calibration import (
    AGE_CURVE,
    AMOUNT_CURVES,
    COUNT_CURVES,
    INCOME_LEVELS,
    NUM_PRD_LEVELS,
    VALUE_GAPS,
    Curve,
)
from affluent_assets.lib.demo_files import write_extract

# Mean of the shared score for AFFLUENT minus NORMAL, in within-class standard deviations. Larger
# values make the columns less redundant and the label easier; 1.75 gives a holdout AUC near 0.88.
CLASS_SHIFT = 1.75

# Card-transaction gaps are rarer among customers without CASA/TD accounts (card-only customers);
# this pull reproduces the ~20% of rows that miss deposits, loans, unit trusts and cards together.
CARD_ONLY_PULL = 1.3

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
