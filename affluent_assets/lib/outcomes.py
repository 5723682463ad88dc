"""Outcomes: when a landed file carries `C_seg` (the customers' segment after the campaign, or
any later labelled extract), or a campaign's outcome file says who upgraded, what was predicted
for those customers is compared with what happened: realized precision and recall at the
threshold and in the top 5/10/20% of scores, per source and model version, next to what the
holdout promised. The queries are lib/sql/realized_outcomes.sql over the rows of
labelled_outcome_rows.sql and campaign_outcome_rows.sql."""

from __future__ import annotations

from contextlib import nullcontext

import duckdb
import numpy as np
import pandas as pd

from affluent_assets.lib.estimates import EXACT_MAX, count_interval, moments_interval
from affluent_assets.lib.warehouse import registered, relations, sql

TOP_SHARES = (5, 10, 20)


def _top(share: int) -> str:
    cut = f"rank <= greatest(1, round(n * {share} / 100.0))"
    return (
        f"sum(case when {cut} then up end) / nullif(sum(case when {cut} then 1 end), 0)"
        f" as precision_top_{share}pct,"
        f" sum(case when {cut} then up end) / nullif(sum(up), 0) as recall_top_{share}pct"
    )


LABELLED_FILES = "labelled files"  # landed files that carried C_seg
OUTCOME_FILES = "outcome files"  # campaign outcome files (lib/outcome_files)


COLUMNS = [
    "source", "model_version", "customers", "affluent", "flagged", "realized_precision",
    "realized_recall", "lowest_flagged_score", "estimated_precision", "estimated_low",
    "estimated_high",
    *[f"{kind}_top_{share}pct" for share in TOP_SHARES for kind in ("precision", "recall")],
]  # fmt: skip


def realized_outcomes(
    con: duckdb.DuckDBPyConnection, outcome_records: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per source and model version with outcomes: landed rows that carried `C_seg`,
    and the matched rows of campaign outcome files (`lib.outcome_files.match_predictions`).
    Empty when there are none, or before the warehouse has its view over landed batches."""
    # A source's name is a parameter given only with its rows: DuckDB refuses one it is given
    # and the query does not use.
    parts, params = [], {"exact_max": EXACT_MAX}
    if "batch_scores" in relations(con):
        parts.append(sql("labelled_outcome_rows"))
        params["labelled_source"] = LABELLED_FILES
    has_records = outcome_records is not None and len(outcome_records) > 0
    if has_records:
        parts.append(sql("campaign_outcome_rows"))
        params["campaign_source"] = OUTCOME_FILES
    if not parts:
        return pd.DataFrame(columns=COLUMNS)
    query = sql("realized_outcomes").format(
        rows=" union all ".join(parts), top_shares=", ".join(_top(share) for share in TOP_SHARES)
    )
    frame = registered(con, "outcome_records", outcome_records) if has_records else nullcontext()
    with frame:
        return _with_intervals(con.execute(query, params).df())


def _with_intervals(table: pd.DataFrame) -> pd.DataFrame:
    """The 90% interval of the flagged count, as a share: exact over the flagged customers'
    scores when they are few, else from the sums (normal approximation)."""
    bounds = []
    for r in table.itertuples():
        flagged = int(r.flagged or 0)
        if not flagged:
            bounds.append((float("nan"), float("nan")))
            continue
        scores = r.flagged_scores
        if isinstance(scores, list | np.ndarray) and len(scores) == flagged:
            low, high = count_interval(np.asarray(scores, dtype="float64"))
        else:
            total = r.estimated_precision * flagged
            low, high = moments_interval(flagged, total, r.flagged_variance)
        bounds.append((low / flagged, high / flagged))
    table = table.drop(columns=["flagged_variance", "flagged_scores"])
    position = table.columns.get_loc("estimated_precision") + 1
    table.insert(position, "estimated_low", [low for low, _ in bounds])
    table.insert(position + 1, "estimated_high", [high for _, high in bounds])
    return table


def calibration_breaks(
    outcomes: pd.DataFrame, estimate_margin: float, min_flagged: int
) -> pd.DataFrame:
    """Rows where calibration broke for the population: realized precision outside the 90%
    interval its own scores gave, or the scores' estimate and the holdout's figure more than
    `estimate_margin` apart (the population is not the one the holdout described), judged on at
    least `min_flagged` flagged customers. `why` says which."""
    judged = outcomes[outcomes["flagged"] >= min_flagged].copy()
    outside = (judged["realized_precision"] < judged["estimated_low"]) | (
        judged["realized_precision"] > judged["estimated_high"]
    )
    parted = (judged["estimated_precision"] - judged["expected_precision"]).abs() > estimate_margin
    judged["why"] = [
        "; ".join(
            filter(None, ["realized outside the estimate's interval" if o else "",
                          "estimate and holdout apart" if p else ""])
        )
        for o, p in zip(outside, parted, strict=True)
    ]  # fmt: skip
    return judged[outside | parted]


def shortfalls(outcomes: pd.DataFrame, margin: float, min_flagged: int) -> pd.DataFrame:
    """Versions whose realized precision at the threshold fell below the holdout's expected
    precision by more than `margin`, judged only on at least `min_flagged` flagged customers."""
    judged = outcomes[outcomes["flagged"] >= min_flagged]
    gap = judged["expected_precision"] - judged["realized_precision"]
    return judged[gap > margin]
