"""The warehouse side of a landing run: the views over the lake (created by the main graph, by a
landing run only when the lake moved) and the drift reference and check against the training
rows, both read from the warehouse read-only."""

import dagster as dg
import duckdb as duckdb_client
import pandas as pd
from dagster_duckdb import DuckDBResource

from affluent_assets.lib import batch_tables, lake
from affluent_assets.lib.drift import DriftReference
from affluent_assets.lib.warehouse import table_exists
from affluent_assets.names import DRIFT_CHECK


def ensure_views(duckdb: DuckDBResource, lake_dir: str) -> bool:
    """The warehouse's views over the lake; True if they had to be (re)created. Checked
    read-only first: the main graph creates them (`landed_batch_views`), so landing runs open the
    warehouse for writing only if the lake moved since, and then one at a time."""
    if _views_current(duckdb, lake_dir):
        return False
    with lake.views_lock(lake_dir):
        if _views_current(duckdb, lake_dir):  # another run created them while this one waited
            return False
        lake.ensure_placeholders(
            lake_dir,
            {
                lake.SCORES: batch_tables.SCORES_SCHEMA,
                lake.CANDIDATES: batch_tables.CANDIDATES_SCHEMA,
                lake.CANDIDATE_HISTORY: batch_tables.CANDIDATES_SCHEMA,
                lake.ESTIMATES: batch_tables.ESTIMATES_SCHEMA,
            },
        )
        with duckdb.get_connection() as con:
            lake.create_views(con, lake_dir)
    return True


def _views_current(duckdb: DuckDBResource, lake_dir: str) -> bool:
    try:
        with duckdb_client.connect(duckdb.database, read_only=True) as con:
            return lake.views_current(con, lake_dir)
    except duckdb_client.Error:
        return False  # no warehouse yet, or a writer holds it: create (the resource retries)


def training_features(con) -> pd.DataFrame | None:
    """The feature rows the model was trained on, or None before the first training."""
    if not (table_exists(con, "customer_features") and table_exists(con, "customer_split")):
        return None
    return con.execute(
        "select f.* from customer_features f join customer_split s using (customer_key)"
        " where s.split = 'train'"
    ).df()


def drift_reference(duckdb: DuckDBResource) -> DriftReference | None:
    """Bins of the training rows' key features, read once per run (read-only); None before the
    first training, or while the main graph holds the warehouse (the check then says so)."""
    try:
        with duckdb_client.connect(duckdb.database, read_only=True) as con:
            training = training_features(con)
    except duckdb_client.Error:
        return None
    return None if training is None or training.empty else DriftReference.from_training(training)


def drift_check_result(report: pd.DataFrame | None) -> dg.AssetCheckResult:
    """Non-blocking: how far this batch's key features have moved from the training rows."""
    if report is None:
        return dg.AssetCheckResult(
            asset_key="batch_scores",
            check_name=DRIFT_CHECK,
            passed=True,
            severity=dg.AssetCheckSeverity.WARN,
            description="no training rows in the warehouse to compare with",
        )
    worst = report.iloc[0]
    significant = report[report["shift"] == "significant"]
    return dg.AssetCheckResult(
        asset_key="batch_scores",
        check_name=DRIFT_CHECK,
        passed=significant.empty,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"largest shift: {worst['feature']} (PSI {worst['psi']:.3f}, {worst['shift']}; "
            f"significant at {worst['threshold']:.3f} for a batch of this size)"
        ),
        metadata={
            "max_psi": float(worst["psi"]),
            **{f"psi_{row.feature}": float(row.psi) for row in report.itertuples()},
            "report": dg.MetadataValue.md(report.to_markdown(index=False, floatfmt=".3f")),
        },
    )
