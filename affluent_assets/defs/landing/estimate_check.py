"""The landing run's warning when a batch's own estimate of its precision and the holdout's
figure part: its customers are not the population the holdout described (another branch,
another month), so the list's holdout `expected_precision` does not speak for them and its
`estimated_precision` should be read instead. Known the moment the batch is scored, weeks
before any outcome."""

import dagster as dg
import pandas as pd

from affluent_assets.names import ESTIMATE_CHECK

ESTIMATE_MARGIN = 0.10  # as model_outcomes' estimate_margin
MIN_FLAGGED = 50  # as model_outcomes' min_flagged: fewer customers say too little

ESTIMATE_CHECK_SPEC = dg.AssetCheckSpec(
    ESTIMATE_CHECK,
    asset="batch_scores",
    description="Warns when the batch's estimated precision at the threshold (from its own "
    f"calibrated scores) and the holdout's figure part by more than {ESTIMATE_MARGIN:.2f}.",
)


def estimate_check_result(estimated: pd.DataFrame) -> dg.AssetCheckResult:
    """Judged at the model's threshold, on at least MIN_FLAGGED customers called."""
    row = estimated[estimated["policy"] == "threshold"].iloc[0]
    judged = row["flagged"] >= MIN_FLAGGED and pd.notna(row["holdout_precision"])
    gap = row["estimated_precision"] - row["holdout_precision"] if judged else 0.0
    figures = (
        f"at the threshold: estimated {row['estimated_precision']:.3f} "
        f"({row['precision_low']:.3f}-{row['precision_high']:.3f}) from the batch's own "
        f"scores, holdout {row['holdout_precision']:.3f}, on {int(row['flagged']):,} customers"
    )
    if not judged:
        why = "too few customers called, or no holdout figure, to judge"
    elif abs(gap) > ESTIMATE_MARGIN:
        side = "overstates" if gap < 0 else "understates"
        why = f"not the holdout's population: the holdout's figure {side} this list"
    else:
        why = "the holdout's figure speaks for this batch"
    return dg.AssetCheckResult(
        asset_key="batch_scores",
        check_name=ESTIMATE_CHECK,
        passed=bool(abs(gap) <= ESTIMATE_MARGIN),
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{figures}; {why}",
        metadata={"estimate_minus_holdout": float(gap), "flagged": int(row["flagged"])},
    )
