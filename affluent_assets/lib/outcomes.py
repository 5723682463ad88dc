"""Outcomes: when a landed file carries `C_seg` (the customers' segment after the campaign, or
any later labelled extract), what was predicted for those customers is compared with what
happened: realized precision and recall at the threshold and in the top 5/10/20% of scores, per
model version, next to what the holdout promised."""

from __future__ import annotations

import duckdb
import pandas as pd

TOP_SHARES = (5, 10, 20)


def _top(share: int) -> str:
    cut = f"rank <= greatest(1, round(n * {share} / 100.0))"
    return (
        f"sum(case when {cut} then up end) / nullif(sum(case when {cut} then 1 end), 0)"
        f" as precision_top_{share}pct,"
        f" sum(case when {cut} then up end) / nullif(sum(up), 0) as recall_top_{share}pct"
    )


OUTCOMES_SQL = f"""
with labelled as (
    select model_version, (c_seg = 'AFFLUENT')::int as up,
           (predicted_segment = 'AFFLUENT')::int as flag,
           row_number() over (partition by model_version order by affluent_probability desc)
               as rank,
           count(*) over (partition by model_version) as n
    from batch_scores where c_seg is not null
)
select model_version, count(*) as customers, sum(up) as affluent, sum(flag) as flagged,
       sum(flag * up) / nullif(sum(flag), 0) as realized_precision,
       sum(flag * up) / nullif(sum(up), 0) as realized_recall,
       {", ".join(_top(share) for share in TOP_SHARES)}
from labelled group by model_version order by model_version
"""


COLUMNS = [
    "model_version", "customers", "affluent", "flagged", "realized_precision", "realized_recall",
    *[f"{kind}_top_{share}pct" for share in TOP_SHARES for kind in ("precision", "recall")],
]  # fmt: skip


def realized_outcomes(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per model version that scored labelled rows (empty when none did, or before
    the warehouse has its view over landed batches)."""
    views = {row[0] for row in con.execute("select view_name from duckdb_views()").fetchall()}
    if "batch_scores" not in views:
        return pd.DataFrame(columns=COLUMNS)
    return con.execute(OUTCOMES_SQL).df()


def shortfalls(outcomes: pd.DataFrame, margin: float, min_flagged: int) -> pd.DataFrame:
    """Versions whose realized precision at the threshold fell below the holdout's expected
    precision by more than `margin`, judged only on at least `min_flagged` flagged customers."""
    judged = outcomes[outcomes["flagged"] >= min_flagged]
    gap = judged["expected_precision"] - judged["realized_precision"]
    return judged[gap > margin]
