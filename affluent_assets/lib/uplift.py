"""What the campaign itself changed: the upgrade rate of the customers called against that of
the control group held back from the same list (lib/control_group), overall and by score
decile, with a 90% interval of the difference, and the Qini curve (incremental upgrades as the
campaign calls further down the list).

The control group was drawn at random within each score decile of the list, so the two groups
differ only by the call: the difference of their rates is the campaign's incremental effect.
Without control rows there is nothing to compare with, and the figures say so."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

from affluent_assets.lib.control_group import STRATA

LEVEL = 0.90
UPLIFT_COLUMNS = [
    "model_version", "scope", "called", "called_upgraded", "called_rate", "control",
    "control_upgraded", "control_rate", "uplift", "uplift_low", "uplift_high",
]  # fmt: skip
NO_CONTROL = "no control rows: the outcome files name no customer held back, so the campaign's "
NO_CONTROL += "effect cannot be told from customers who would have upgraded anyway"


def difference_interval(
    called_up: int, called: int, control_up: int, control: int, level: float = LEVEL
) -> tuple[float, float, float]:
    """Called rate minus control rate, and an interval of it (Agresti-Caffo: one success and one
    failure added to each group, which keeps its coverage near `level` for small groups and
    rates near 0 or 1, where the plain Wald interval is too narrow)."""
    if called == 0 or control == 0:
        return np.nan, np.nan, np.nan
    difference = called_up / called - control_up / control
    a, b = (called_up + 1) / (called + 2), (control_up + 1) / (control + 2)
    spread = NormalDist().inv_cdf(0.5 + level / 2) * np.sqrt(
        a * (1 - a) / (called + 2) + b * (1 - b) / (control + 2)
    )
    centre = a - b
    return difference, max(-1.0, centre - spread), min(1.0, centre + spread)


def _row(version: str, scope: str, group: pd.DataFrame) -> tuple:
    is_control = group["control"].to_numpy() == 1
    up = group["upgraded"].to_numpy()
    n_t, n_c = int((~is_control).sum()), int(is_control.sum())
    x_t, x_c = int(up[~is_control].sum()), int(up[is_control].sum())
    rates = (x_t / n_t if n_t else np.nan, x_c / n_c if n_c else np.nan)
    return (version, scope, n_t, x_t, rates[0], n_c, x_c, rates[1],
            *difference_interval(x_t, n_t, x_c, n_c))  # fmt: skip


def score_deciles(scores) -> np.ndarray:
    """1..10 by rank of score among the customers with outcomes (1 = best tenth)."""
    p = np.asarray(scores, dtype="float64")
    rank = np.empty(len(p), dtype="int64")
    rank[np.argsort(-p, kind="stable")] = np.arange(len(p))
    return rank * STRATA // max(len(p), 1) + 1


def uplift_table(records: pd.DataFrame) -> pd.DataFrame:
    """Per model version: `overall`, then `decile 1`..`decile 10`, from outcome records with
    `model_version`, `affluent_probability`, `upgraded` and `control` (0/1). Empty without
    control rows (see NO_CONTROL)."""
    if records is None or records.empty or not records["control"].any():
        return pd.DataFrame(columns=UPLIFT_COLUMNS)
    rows = []
    for version, group in records.groupby("model_version", sort=True):
        if not group["control"].any():
            continue
        rows.append(_row(version, "overall", group))
        deciles = score_deciles(group["affluent_probability"])
        for decile in range(1, STRATA + 1):
            members = group[deciles == decile]
            if len(members):
                rows.append(_row(version, f"decile {decile}", members))
    return pd.DataFrame(rows, columns=UPLIFT_COLUMNS)


def qini_curve(records: pd.DataFrame, points: int = 50) -> pd.DataFrame:
    """Per model version, calling down the list by score: the share of the list reached and the
    incremental upgrades so far (upgrades among the called minus the control's upgrades scaled
    to as many customers). A random order would reach the last point on a straight line."""
    columns = ["model_version", "share_called", "incremental_upgrades"]
    if records is None or records.empty or not records["control"].any():
        return pd.DataFrame(columns=columns)
    frames = []
    for version, group in records.groupby("model_version", sort=True):
        ordered = group.sort_values("affluent_probability", ascending=False, kind="stable")
        is_control = ordered["control"].to_numpy() == 1
        up = ordered["upgraded"].to_numpy()
        n_t, n_c = np.cumsum(~is_control), np.cumsum(is_control)
        y_t, y_c = np.cumsum(up * ~is_control), np.cumsum(up * is_control)
        qini = y_t - y_c * n_t / np.maximum(n_c, 1)
        at = np.unique(np.linspace(0, len(ordered) - 1, min(points, len(ordered))).astype(int))
        frames.append(
            pd.DataFrame(
                {
                    "model_version": version,
                    "share_called": np.append(0.0, (at + 1) / len(ordered)),
                    "incremental_upgrades": np.append(0.0, qini[at]),
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def uplift_markdown(table: pd.DataFrame) -> str:
    if table.empty:
        return NO_CONTROL
    lines = [
        "| version | scope | called | rate | control | rate | uplift (90%) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| v{r.model_version} | {r.scope} | {r.called:,} | {r.called_rate:.3f} | "
            f"{r.control:,} | {_rate(r.control_rate)} | {_uplift(r)} |"
        )
    return "\n".join(lines)


def _rate(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.3f}"


def _uplift(r) -> str:
    if pd.isna(r.uplift):
        return "n/a"
    return f"{r.uplift:+.3f} ({r.uplift_low:+.3f} to {r.uplift_high:+.3f})"
