"""Batch rescoring of files dropped in the landing folder: one dynamic partition per file.

landed_batch: the file read, checked against the contract (label optional) and cleaned with the
training code, stored in `landed_batch`. batch_scores: those rows scored with the champion
model, stored in `batch_scores`, plus the `latest_candidates` view. A bad file is moved to the
quarantine folder with a reason and the run fails; nothing in DuckDB changes.
"""

import tempfile
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from affluent_assets import settings
from affluent_assets.defs.common import (
    DUCKDB_POOL,
    schema_check_spec,
    table_metadata,
    validate_with_check,
)
from affluent_assets.defs.ingest.assets import QUALITY_CHECK, quality_check_result
from affluent_assets.defs.resources import MlflowModels
from affluent_assets.lib import landing
from affluent_assets.lib.drift import SIGNIFICANT_PSI, drift_report
from affluent_assets.lib.extract_io import ExtractError, read_extract
from affluent_assets.lib.features import build_features, clean_customers
from affluent_assets.lib.registry import CHAMPION_ALIAS
from affluent_assets.lib.schemas import contract_frame, raw_extract_schema, scored_customers_schema
from affluent_assets.lib.scoring import score_features
from affluent_assets.lib.warehouse import read_table, replace_rows, table_exists

landed_batches = dg.DynamicPartitionsDefinition(name="landed_batches")
DRIFT_CHECK = "feature_drift"

BATCH_DESCRIPTIONS = {
    "batch_key": "Partition key: the landing file name made safe",
    "source_file": "Landing file name as dropped",
    "content_hash": "sha256 of the file's bytes; the same content is scored once",
    "customer_key": "Row identifier `<C_ID>-<source_row>`; unique although C_ID repeats",
    "source_row": "1-based data row in the file (row 1 = first row under the header)",
    "c_seg": "Label if the file had one (landing files may not)",
}


class LandingConfig(dg.Config):
    """Folders of one landing run; empty means the configured default (see settings)."""

    landing_dir: str = ""
    quarantine_dir: str = ""


def _reject(path: Path, quarantine_dir: str, problem: str, log) -> dg.Failure:
    moved = landing.quarantine(path, quarantine_dir, problem)
    log.error(f"{problem}\nquarantined as {moved}")
    return dg.Failure(
        description=f"{problem} (moved to {moved})",
        metadata={"file": path.name, "quarantined_as": str(moved)},
    )


@dg.asset(
    partitions_def=landed_batches,
    group_name="landing",
    pool=DUCKDB_POOL,
    output_required=False,
    check_specs=[
        schema_check_spec("landed_batch", "The data contract (label optional) for a landing file."),
        dg.AssetCheckSpec(
            QUALITY_CHECK, asset="landed_batch", description="Unknown levels, ages (warn)."
        ),
    ],
)
def landed_batch(context: dg.AssetExecutionContext, config: LandingConfig, duckdb: DuckDBResource):
    """One landing file read, checked against the data contract (`C_seg` optional) and cleaned
    with the training code. A file that cannot be read or breaks the contract is moved to the
    quarantine folder with `<name>.reason.txt` and the run fails naming file, column and rows;
    content already scored under another batch is recorded and adds no rows."""
    key = context.partition_key
    folder = config.landing_dir or settings.landing_dir()
    quarantine_dir = config.quarantine_dir or settings.quarantine_dir()
    path = landing.find_batch_file(folder, key)
    if path is None:
        raise dg.Failure(description=f"batch {key!r}: no landing file for it in {folder}")
    with tempfile.TemporaryDirectory(prefix="landing-") as scratch:
        copy, digest = landing.snapshot(path, scratch)
        try:
            frame = read_extract(copy)
        except ExtractError as error:
            raise _reject(path, quarantine_dir, str(error), context.log) from None
    context.log.info(f"read {len(frame)} rows from {path.name} (sha256 {digest[:12]})")
    try:
        raw = yield from validate_with_check(
            raw_extract_schema(require_label=False), frame, path.name
        )
    except dg.Failure as failure:
        raise _reject(path, quarantine_dir, failure.description, context.log) from None
    yield quality_check_result(raw)
    clean = clean_customers(contract_frame(raw), path.name)
    rows = landing.with_stable_types(
        clean.assign(
            batch_key=key, content_hash=digest, landed_at=datetime.now(UTC).replace(tzinfo=None)
        )
    )
    with duckdb.get_connection() as con:
        duplicate_of = landing.scored_elsewhere(con, landing.SCORES_TABLE, digest, key)
        if duplicate_of is None:
            replace_rows(con, landing.LANDED_TABLE, "batch_key", key, rows)
    if duplicate_of is not None:
        context.log.warning(
            f"{path.name}: same content (sha256 {digest[:12]}) already scored as batch "
            f"{duplicate_of!r}; no rows added"
        )
        yield dg.AssetObservation(
            asset_key=context.asset_key,
            partition=key,
            metadata={"duplicate_of": duplicate_of, "content_hash": digest, "file": path.name},
        )
        return
    yield dg.MaterializeResult(
        metadata={
            "file": path.name,
            "content_hash": digest,
            **table_metadata(rows, BATCH_DESCRIPTIONS),
        }
    )


@dg.asset(
    partitions_def=landed_batches,
    group_name="landing",
    pool=DUCKDB_POOL,
    deps=[landed_batch],
    output_required=False,
    check_specs=[
        schema_check_spec("batch_scores", "Probabilities in [0, 1], deciles 1-10."),
        dg.AssetCheckSpec(
            DRIFT_CHECK,
            asset="batch_scores",
            description="Population stability index of key features against the training "
            f"rows (warns at PSI >= {SIGNIFICANT_PSI}).",
        ),
    ],
)
def batch_scores(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, mlflow_models: MlflowModels
):
    """The batch scored with the `champion` model: score, decile, predicted label at the model's
    threshold, model name and version. The batch's rows are replaced in one transaction; the
    `latest_candidates` view ranks the hidden affluent candidates of all batches."""
    key = context.partition_key
    with duckdb.get_connection() as con:
        landed = read_table(con, landing.LANDED_TABLE, "batch_key = ?", [key])
    if landed.empty:
        raise dg.Failure(description=f"batch {key!r}: no rows in {landing.LANDED_TABLE}")
    try:
        model = mlflow_models.describe(CHAMPION_ALIAS)
    except Exception as error:  # the registry is unreachable or unreadable
        raise dg.Failure(description=f"cannot read the model registry: {error}") from None
    if model is None:
        raise dg.Failure(
            description=f"no {CHAMPION_ALIAS!r} version of model {mlflow_models.model_name!r} "
            f"to score batch {key!r} with; train it with affluent_job first"
        )
    features = build_features(landed)
    yield drift_check_result(duckdb, features)
    scores = score_features(
        mlflow_models.load(model), features, model.threshold, model.decile_edges
    )
    table = landing.scores_table(landed, scores, model)
    table = yield from validate_with_check(scored_customers_schema(), table, "batch_scores")
    table = landing.with_stable_types(table)
    digest = str(landed["content_hash"].iloc[0])
    with duckdb.get_connection() as con:
        duplicate_of = landing.scored_elsewhere(con, landing.SCORES_TABLE, digest, key)
        if duplicate_of is None:
            replace_rows(con, landing.SCORES_TABLE, "batch_key", key, table)
            landing.create_candidates_view(con)
    if duplicate_of is not None:
        context.log.warning(f"batch {key!r}: content already scored as {duplicate_of!r}")
        return
    context.log.info(f"scored {len(table)} rows of {key} with {model.name} v{model.version}")
    yield dg.MaterializeResult(
        metadata={
            **table_metadata(table, BATCH_DESCRIPTIONS),
            "predicted_affluent": int((table["predicted_segment"] == "AFFLUENT").sum()),
            "model_version": model.version,
            "content_hash": digest,
        }
    )


def training_features(con) -> pd.DataFrame | None:
    """The feature rows the model was trained on, or None before the first training."""
    if not (table_exists(con, "customer_features") and table_exists(con, "customer_split")):
        return None
    return con.execute(
        "select f.* from customer_features f join customer_split s using (customer_key)"
        " where s.split = 'train'"
    ).df()


def drift_check_result(duckdb: DuckDBResource, features: pd.DataFrame) -> dg.AssetCheckResult:
    """Non-blocking: how far this batch's key features have moved from the training rows."""
    with duckdb.get_connection() as con:
        training = training_features(con)
    if training is None or training.empty:
        return dg.AssetCheckResult(
            check_name=DRIFT_CHECK,
            passed=True,
            severity=dg.AssetCheckSeverity.WARN,
            description="no training rows in the warehouse to compare with",
        )
    report = drift_report(training, features)
    worst = report.iloc[0]
    return dg.AssetCheckResult(
        check_name=DRIFT_CHECK,
        passed=bool(worst["psi"] < SIGNIFICANT_PSI),
        severity=dg.AssetCheckSeverity.WARN,
        description=f"largest shift: {worst['feature']} (PSI {worst['psi']:.3f}, {worst['shift']})",
        metadata={
            "max_psi": float(worst["psi"]),
            **{f"psi_{row.feature}": float(row.psi) for row in report.itertuples()},
            "report": dg.MetadataValue.md(report.to_markdown(index=False, floatfmt=".3f")),
        },
    )


landing_job = dg.define_asset_job(
    "landing_job",
    selection=dg.AssetSelection.assets(landed_batch, batch_scores),
    partitions_def=landed_batches,
    description="Validate, clean and score one landing file (one dynamic partition per file).",
    # One process: a landing file is scored seconds after it lands.
    executor_def=dg.in_process_executor,
)
