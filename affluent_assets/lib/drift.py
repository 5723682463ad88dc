"""Population stability index (PSI) of a scored batch's features against the training rows.

PSI = sum over bins of (actual% - expected%) * ln(actual% / expected%). Bins are the training
deciles for numbers (a blank is a bin of its own: gaps are predictive here) and the levels for
text. Common reading: below 0.10 stable, 0.10-0.25 moderate shift, above 0.25 significant.

A small batch drawn from the very population the model was trained on has a large PSI by chance
alone (30 rows: about 0.38 here), so the bar rises for small batches: a shift is significant
only when PSI also exceeds what sampling alone gives in 999 batches of 1,000 (PSI is about
chi-square with bins-1 degrees of freedom times 1/rows + 1/training rows).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import chi2

from affluent_assets.lib.levels import factorized

DRIFT_FEATURES = [
    "num_prd",
    "casatd_cnt",
    "asset_value",
    "mthcasa",
    "mthtd",
    "drvcr",
    "maxut",
    "age",
    "incm_typ",
    "gn_occ",
]
MODERATE_PSI = 0.10
SIGNIFICANT_PSI = 0.25
_FLOOR = 1e-4  # keeps ln() finite for a bin that one side leaves empty
CHANCE_QUANTILE = 0.999


def significance_threshold(bins: int, rows: int, training_rows: int) -> float:
    """The PSI at or above which a batch of `rows` has shifted significantly: 0.25, or more for
    a batch so small that sampling alone would often reach 0.25."""
    if rows < 1 or bins < 2:
        return float("inf")
    chance = chi2.ppf(CHANCE_QUANTILE, bins - 1) * (1 / rows + 1 / max(1, training_rows))
    return float(max(SIGNIFICANT_PSI, chance))


@dataclass(frozen=True)
class _Bins:
    """One feature's bins fitted on the training rows: decile edges for numbers (None for
    text), and the training counts per bin label (`blank` for a gap)."""

    edges: np.ndarray | None
    expected: dict
    expected_rows: int

    def count(self, values: pd.Series) -> Counter:
        if self.edges is None:
            codes, levels = factorized(values)  # known for a chunk's features (lib/levels)
            counts = np.bincount(codes + 1, minlength=len(levels) + 1).tolist()
            found = Counter({"blank": counts[0]} if counts[0] else {})
            for level, count in zip(levels.tolist(), counts[1:], strict=True):
                found[level] += count
            return found
        numbers = values.to_numpy(dtype="float64", na_value=np.nan)
        present = ~np.isnan(numbers)
        binned = np.bincount(
            np.searchsorted(self.edges, numbers[present], side="right"),
            minlength=len(self.edges) + 1,
        )
        return Counter({**dict(enumerate(binned.tolist())), "blank": int((~present).sum())})


def _fit_bins(training: pd.Series, bins: int) -> _Bins:
    if pd.api.types.is_numeric_dtype(training):
        present = training.dropna().to_numpy(dtype="float64")
        edges = (
            np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))
            if len(present)
            else np.array([])
        )
        fitted = _Bins(edges, {}, len(training))
    else:
        fitted = _Bins(None, {}, len(training))
    fitted.expected.update(fitted.count(training))
    return fitted


@dataclass(frozen=True)
class DriftReference:
    """The training rows' distribution of each drift feature, fitted once, so that batches of
    any size are compared chunk by chunk without holding them (see DriftAccumulator)."""

    bins: dict[str, _Bins]

    @classmethod
    def from_training(
        cls, training: pd.DataFrame, features=DRIFT_FEATURES, bins: int = 10
    ) -> DriftReference:
        return cls({feature: _fit_bins(training[feature], bins) for feature in features})


@dataclass
class DriftAccumulator:
    """Bin counts of a batch added chunk by chunk; `report()` equals `drift_report` on the
    whole batch."""

    reference: DriftReference
    rows: int = 0
    counts: dict[str, Counter] = field(default_factory=dict)

    def add(self, chunk: pd.DataFrame) -> None:
        self.rows += len(chunk)
        for feature, fitted in self.reference.bins.items():
            self.counts.setdefault(feature, Counter()).update(fitted.count(chunk[feature]))

    def psi(self, feature: str) -> float:
        e, a = self._shares(feature)
        return float(np.sum((a - e) * np.log(a / e)))

    def threshold(self, feature: str) -> float:
        """The significance bar for this batch's size (see significance_threshold)."""
        fitted = self.reference.bins[feature]
        actual = self.counts.get(feature, Counter())
        occupied = {k for k, v in fitted.expected.items() if v} | {
            k for k, v in actual.items() if v
        }
        return significance_threshold(len(occupied), self.rows, fitted.expected_rows)

    def _shares(self, feature: str) -> tuple[np.ndarray, np.ndarray]:
        fitted = self.reference.bins[feature]
        actual = self.counts.get(feature, Counter())
        if fitted.edges is not None:
            labels = [*range(len(fitted.edges) + 1), "blank"]
        else:
            labels = sorted(set(fitted.expected) | set(actual), key=str)
        e = _shares([fitted.expected.get(label, 0) for label in labels], fitted.expected_rows)
        a = _shares([actual.get(label, 0) for label in labels], self.rows)
        return e, a

    def report(self) -> pd.DataFrame:
        """One row per feature: PSI, the significance bar for this batch's size, and the
        reading (stable / moderate / significant; the moderate bar scales with the other)."""
        rows = []
        for feature in self.reference.bins:
            psi, bar = self.psi(feature), self.threshold(feature)
            moderate = MODERATE_PSI * bar / SIGNIFICANT_PSI
            level = "significant" if psi >= bar else "moderate" if psi >= moderate else "stable"
            rows.append({"feature": feature, "psi": psi, "threshold": bar, "shift": level})
        report = pd.DataFrame(rows)
        return report.sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)


def _shares(counts: list[int], total: int) -> np.ndarray:
    return np.maximum(np.asarray(counts, dtype="float64") / max(1, total), _FLOOR)


def population_stability(expected: pd.Series, actual: pd.Series, bins: int = 10) -> float:
    """PSI of `actual` against `expected` (the training distribution)."""
    reference = DriftReference({"x": _fit_bins(expected, bins)})
    accumulator = DriftAccumulator(reference)
    accumulator.add(pd.DataFrame({"x": actual}))
    return accumulator.psi("x")


def drift_report(
    training: pd.DataFrame, batch: pd.DataFrame, features=DRIFT_FEATURES
) -> pd.DataFrame:
    """One row per feature: PSI and its reading (stable / moderate / significant)."""
    accumulator = DriftAccumulator(DriftReference.from_training(training, features))
    accumulator.add(batch)
    return accumulator.report()
