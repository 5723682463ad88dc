"""Population stability index (PSI) of a scored batch's features against the training rows.

PSI = sum over bins of (actual% - expected%) * ln(actual% / expected%). Bins are the training
deciles for numbers (a blank is a bin of its own: gaps are predictive here) and the levels for
text. Common reading: below 0.10 stable, 0.10-0.25 moderate shift, above 0.25 significant.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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


def _shares(labels: pd.Series, bins: list) -> np.ndarray:
    counts = labels.value_counts().reindex(bins, fill_value=0).to_numpy(dtype="float64")
    return np.maximum(counts / max(1, len(labels)), _FLOOR)


def _bin_numeric(values: pd.Series, edges: np.ndarray) -> pd.Series:
    binned = pd.Series(np.searchsorted(edges, values.to_numpy(), side="right"), index=values.index)
    return binned.astype(object).where(values.notna(), "blank")


def population_stability(expected: pd.Series, actual: pd.Series, bins: int = 10) -> float:
    """PSI of `actual` against `expected` (the training distribution)."""
    if pd.api.types.is_numeric_dtype(expected) and pd.api.types.is_numeric_dtype(actual):
        present = expected.dropna().to_numpy(dtype="float64")
        edges = (
            np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))
            if len(present)
            else np.array([])
        )
        expected_bins = _bin_numeric(expected.astype("float64"), edges)
        actual_bins = _bin_numeric(actual.astype("float64"), edges)
        labels = [*range(len(edges) + 1), "blank"]
    else:
        expected_bins = expected.astype(object).where(expected.notna(), "blank")
        actual_bins = actual.astype(object).where(actual.notna(), "blank")
        labels = sorted(set(expected_bins) | set(actual_bins), key=str)
    e = _shares(expected_bins, labels)
    a = _shares(actual_bins, labels)
    return float(np.sum((a - e) * np.log(a / e)))


def drift_report(
    training: pd.DataFrame, batch: pd.DataFrame, features=DRIFT_FEATURES
) -> pd.DataFrame:
    """One row per feature: PSI and its reading (stable / moderate / significant)."""
    rows = []
    for feature in features:
        psi = population_stability(training[feature], batch[feature])
        level = (
            "significant"
            if psi >= SIGNIFICANT_PSI
            else "moderate"
            if psi >= MODERATE_PSI
            else "stable"
        )
        rows.append({"feature": feature, "psi": psi, "shift": level})
    return (
        pd.DataFrame(rows).sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)
    )
