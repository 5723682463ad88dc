"""Every candidate list the main graph produces, kept: an append-only table of snapshots (one
per run), with views for the latest list and a macro for the list as of a date. The current
tables stay as they are; history is never replaced, only added to. The table's, views' and
macro's SQL is in lib/sql/, a file each."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from affluent_assets.lib.warehouse import sql, table_exists, transaction_over

HISTORY = "candidate_history"
SNAPSHOT_COLUMNS = [
    "snapshot_id", "snapshot_at", "model_version", "policy", "score_cut", "candidate_rank",
    "customer_key", "affluent_probability", "expected_precision", "estimated_precision",
    "group", "reason_1", "reason_2", "reason_3",
]  # fmt: skip
# The views and macro over the history, each `lib/sql/<name>.sql`, recreated with every snapshot.
VIEWS = {
    name: sql(name) for name in ("latest_candidate_list", "candidate_lists", "candidates_as_of")
}


def snapshot(
    candidates: pd.DataFrame, snapshot_id: str, at: datetime, policy: str, score_cut: float
) -> pd.DataFrame:
    """The list as a snapshot: who was on it, in which rank, with which score and reasons."""
    frame = candidates.assign(
        snapshot_id=snapshot_id, snapshot_at=at, policy=policy, score_cut=float(score_cut)
    )
    for column in ("reason_1", "reason_2", "reason_3", "expected_precision"):
        if column not in frame:
            frame[column] = None
    if "estimated_precision" not in frame:
        frame["estimated_precision"] = None
    if "group" not in frame:
        frame["group"] = "campaign"  # a list without a control group: everyone is called
    return frame[SNAPSHOT_COLUMNS]


def append_snapshot(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> int:
    """Add one snapshot in one transaction (a rerun of the same snapshot replaces only its own
    rows); earlier snapshots are never touched. Returns how many snapshots are kept."""
    with transaction_over(con, frame):
        if not table_exists(con, HISTORY):
            con.execute(sql(HISTORY))
        _add_new_columns(con)
        ids = frame["snapshot_id"].unique().tolist()
        con.execute(f"delete from {HISTORY} where snapshot_id in (select unnest(?))", [ids])
        con.execute(f"insert into {HISTORY} by name select * from incoming_frame")
        for statement in VIEWS.values():
            con.execute(statement)
    return con.execute(f"select count(distinct snapshot_id) from {HISTORY}").fetchall()[0][0]


def _add_new_columns(con: duckdb.DuckDBPyConnection) -> None:
    """Columns snapshots gained later (`group`, `estimated_precision`), added to a history
    kept from before: its earlier snapshots read them as missing."""
    kept = {row[0] for row in con.execute(f"describe {HISTORY}").fetchall()}
    for name, kind, *_ in con.execute("describe incoming_frame").fetchall():
        if name not in kept:
            con.execute(f'alter table {HISTORY} add column "{name}" {kind}')
