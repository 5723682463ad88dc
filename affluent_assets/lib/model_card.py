"""Group figures on the holdout (is the list as good for every age band and occupation group?)
and the model card each registered version carries: what it was trained on, how it was split,
how well it does and where, its operating point and calibration, and its known limits."""

from __future__ import annotations

import numpy as np
import pandas as pd

AGE_BANDS = [(0, 30, "under 30"), (30, 45, "30-44"), (45, 60, "45-59"), (60, 200, "60 and over")]


def age_band(age: pd.Series) -> pd.Series:
    """Bands of the `age` feature; a blank age (placeholder 122, implausible) is `unknown`."""
    bands = pd.Series("unknown", index=age.index, dtype=object)
    for low, high, label in AGE_BANDS:
        bands[(age >= low) & (age < high)] = label
    return bands


def group_metrics(
    labels: pd.Series, probability: pd.Series, threshold: float, features: pd.DataFrame
) -> pd.DataFrame:
    """Per age band and occupation group (gn_occ): rows, AFFLUENT base rate, the share flagged
    (positive rate), and precision and recall at the model's threshold, on holdout rows."""
    y = np.asarray(labels, dtype=int)
    flagged = np.asarray(probability) >= threshold
    groupings = {
        "age_band": age_band(features["age"]).to_numpy(),
        "occupation": features["gn_occ"].astype(object).fillna("blank").to_numpy(),
    }
    rows = []
    for grouping, values in groupings.items():
        for group in sorted(set(values), key=str):
            member = values == group
            hits, called, positives = (
                int((flagged & member & (y == 1)).sum()),
                int((flagged & member).sum()),
                int((member & (y == 1)).sum()),
            )
            rows.append(
                {
                    "grouping": grouping,
                    "group": str(group),
                    "rows": int(member.sum()),
                    "base_rate": positives / max(1, int(member.sum())),
                    "positive_rate": called / max(1, int(member.sum())),
                    "precision": hits / called if called else np.nan,
                    "recall": hits / positives if positives else np.nan,
                }
            )
    return pd.DataFrame(rows)


def model_card(
    model, metrics: dict, reliability: pd.DataFrame, groups: pd.DataFrame, split: dict
) -> str:
    """The model card (markdown) logged with the version in MLflow and shown on its asset."""
    headline = ["roc_auc", "pr_auc", "brier_score", "recall", "precision", "f1"]
    figures = "\n".join(f"| {name} | {metrics[name]:.3f} |" for name in headline)
    calibration = float(
        np.average(
            (reliability["mean_predicted"] - reliability["observed_rate"]).abs(),
            weights=reliability["customers"],
        )
    )
    return f"""# Model card: {model.name} v{model.version}

## Data
The bank's Existing-To-Bank extract (the data contract's 30 columns), label `C_seg`
(AFFLUENT / NORMAL). Train rows: {split["train"]:,}; holdout rows: {split["holdout"]:,}
(stratified, seeded); every fitted step was fitted on train rows only.

## Holdout figures (rows the model never saw)
| metric | value |
|---|---|
{figures}

## Operating point
Threshold {model.threshold:.4f} (chosen on training folds for the target recall): it flags
{metrics["flagged_share"]:.1%} of holdout customers, with recall {metrics["recall"]:.3f} and
precision {metrics["precision"]:.3f}.

## Calibration
Mean absolute gap between predicted and observed AFFLUENT rates over the reliability bins
(weighted by rows): {calibration:.3f}.

## By group (holdout, at the threshold)
{groups.to_markdown(index=False, floatfmt=".3f")}

## Known limits
- Trained on one bank's extract; the holdout is from the same extract, not a later period:
  figures on future customers may be lower (watch the drift check on landed batches).
- No gender in the extract: group figures cover age bands and occupation groups only.
- Ages of 122 (the source's placeholder) and implausible ages are blank (`unknown` band).
- Candidates are NORMAL customers who look like AFFLUENT ones: the list ranks likelihood,
  not willingness to upgrade; realized precision needs campaign outcomes.
"""
