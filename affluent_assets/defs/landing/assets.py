"""Batch rescoring of files dropped in the landing folder: one dynamic partition per file.

One step streams the file in chunks (read, contract check, cleaning and features with the
training code, champion scores) into `batch_scores`, then explains the batch's candidates into
`batch_candidates`. Both are Parquet files in the lake (lib/lake.py), published by rename
when complete, so a reader sees a batch whole or not at all and no lock is taken while a file
is read or scored. A bad file is moved to the quarantine folder with a reason and the run
fails; nothing stored changes.
"""

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb as duckdb_client
import pandas as pd
from dagster_duckdb import DuckDBResource

from affluent_assets import settings
from affluent_assets.defs import telemetry
from affluent_assets.defs.common import DUCKDB_POOL, schema_check_spec
from affluent_assets.defs.ingest.assets import quality_check_result
from affluent_assets.defs.landing.estimate_check import ESTIMATE_CHECK_SPEC, estimate_check_result
from affluent_assets.defs.resources import MlflowModels
from affluent_assets.lib import batch_scoring, batch_tables, estimates, lake, landing
from affluent_assets.lib.champion import ChampionUnavailable, ScoringModel, load_champion
from affluent_assets.lib.drift import SIGNIFICANT_PSI, DriftReference
from affluent_assets.lib.extract_io import DEFAULT_CHUNK_ROWS, ExtractError, open_extract
from affluent_assets.lib.registry import CHAMPION_ALIAS
from affluent_assets.lib.schemas import MAX_ROWS_NAMED, ContractViolation
from affluent_assets.lib.scorer import Stopwatch
from affluent_assets.lib.warehouse import table_exists
from affluent_assets.names import (
    CHAMPION_VERSION_TAG,
    DRIFT_CHECK,
    ESTIMATE_CHECK,
    QUALITY_CHECK,
    SCHEMA_CHECK,
)

landed_batches = dg.DynamicPartitionsDefinition(name="landed_batches")

BATCH_DESCRIPTIONS = {
    "batch_key": "Partition key: the landing file name made safe",
    "source_file": "Landing file name as dropped",
    "content_hash": "sha256 of the file's bytes; the same content is scored once",
    "customer_key": "Row identifier `<C_ID>-<source_row>`; unique although C_ID repeats",
    "source_row": "1-based data row in the file (row 1 = first row under the header)",
    "c_seg": "Label if the file had one (landing files may not)",
    "expected_precision": "Holdout precision of calling everyone scored at or above this "
    "customer (the champion's holdout curve)",
    "reason_1": "Strongest feature pushing this score up: `feature = value (+contribution)`",
    "run_id": "The Dagster run that scored the batch",
}


class LandingConfig(dg.Config):
    """One landing run: folders (empty means the configured default, see settings) and how
    many rows are read and scored at a time (memory grows with this, not with the file)."""

    landing_dir: str = ""
    quarantine_dir: str = ""
    lake_dir: str = ""
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    # The file in landing_dir when the batch key is not its name's (`affluent score PATH`).
    file_name: str = ""


ProgressCallback = Callable[[str, int], None]


def _reject(path: Path, quarantine_dir: str, problem: str, log) -> dg.Failure:
    moved = landing.quarantine(path, quarantine_dir, problem)
    log.error(f"{problem}\nquarantined as {moved}")
    return dg.Failure(
        description=f"{problem} (moved to {moved})",
        metadata={"file": path.name, "quarantined_as": str(moved)},
    )


def _contract_check(error: ExtractError) -> dg.AssetCheckResult:
    metadata = {"source": error.path.name}
    if isinstance(error, ContractViolation):
        cases = error.failures.head(50 * MAX_ROWS_NAMED)
        metadata["failure_cases"] = dg.MetadataValue.md(cases.astype(str).to_markdown(index=False))
    return dg.AssetCheckResult(
        asset_key="batch_scores",
        check_name=SCHEMA_CHECK,
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=str(error),
        metadata=metadata,
    )


def _champion(mlflow_models: MlflowModels, key: str, version: str | None) -> ScoringModel:
    """The version the run was asked for (its sensor's champion), else the champion now."""
    try:
        return load_champion(
            mlflow_models.tracking_uri,
            mlflow_models.model_name,
            alias=version or CHAMPION_ALIAS,
            cache_dir=settings.champion_cache_dir(),
        )
    except ChampionUnavailable as error:
        raise dg.Failure(description=f"cannot score batch {key!r}: {error}") from None


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "batch_scores",
            partitions_def=landed_batches,
            group_name="landing",
            description="Every row of a landing file scored with the champion: probability, "
            "decile, predicted segment, model version (lake: batch_scores/<batch>.parquet).",
            skippable=True,
        ),
        dg.AssetSpec(
            "batch_candidates",
            partitions_def=landed_batches,
            group_name="landing",
            deps=["batch_scores"],
            description="The batch's hidden affluent candidates with their three reasons and "
            "expected precision (lake: batch_candidates/<batch>.parquet).",
            skippable=True,
        ),
    ],
    check_specs=[
        schema_check_spec("batch_scores", "The data contract (label optional), every row."),
        dg.AssetCheckSpec(
            QUALITY_CHECK, asset="batch_scores", description="Unknown levels, ages (warn)."
        ),
        dg.AssetCheckSpec(
            DRIFT_CHECK,
            asset="batch_scores",
            description="Population stability index of key features against the training "
            f"rows (warns at PSI >= {SIGNIFICANT_PSI}, higher for batches too small to tell).",
        ),
        ESTIMATE_CHECK_SPEC,
    ],
)
@telemetry.traced_landing_run
def batch_scores(
    context: dg.AssetExecutionContext,
    config: LandingConfig,
    duckdb: DuckDBResource,
    mlflow_models: MlflowModels,
    scoring_progress: dg.ResourceParam[ProgressCallback],
):
    """One landing file, streamed in chunks of `chunk_rows`: checked against the data contract
    (`C_seg` optional), cleaned and featurized with the training code and scored with the
    `champion`; then its candidates get reasons and expected precision. A file that cannot be
    read or breaks the contract (on any row) is quarantined with `<name>.reason.txt` and the run
    fails naming file, columns and rows; content already scored under another batch adds no
    rows."""
    started = time.perf_counter()
    clock = Stopwatch(traced=True)  # every stage until queryable, for the breakdown and trace
    key = context.partition_key
    folder = config.landing_dir or settings.landing_dir()
    quarantine_dir = config.quarantine_dir or settings.quarantine_dir()
    lake_dir = config.lake_dir or settings.lake_dir()
    if config.file_name:
        path = landing.resolve_inside(folder, config.file_name)
        path = path if path.is_file() else None
    else:
        path = landing.find_batch_file(folder, key)
    if path is None:
        raise dg.Failure(description=f"batch {key!r}: no landing file for it in {folder}")
    with clock.stage("model"):
        scorer = _champion(mlflow_models, key, context.run.tags.get(CHAMPION_VERSION_TAG))
    identity = batch_tables.BatchIdentity(
        key, path.name, context.run_id, datetime.now(UTC).replace(tzinfo=None)
    )

    def progress(phase: str, rows: int) -> None:
        scoring_progress(phase, rows)
        context.log.debug(f"{phase}: {rows:,} rows")

    staging = lake.staging_dir(lake_dir, key)
    try:
        try:
            with open_extract(path) as extract:
                with clock.stage("hash"):
                    digest = extract.sha256()
                    duplicate_of = lake.scored_elsewhere(lake_dir, digest, key)
                    replaced = _replaces(lake.batch_summary(lake_dir, key), digest, key)
                if duplicate_of is not None:
                    yield from _duplicate(context, path, digest, duplicate_of)
                    return
                with clock.stage("drift_reference"):
                    reference = drift_reference(duckdb)
                scored = batch_scoring.score_extract(
                    extract, digest, identity, scorer, staging, config.chunk_rows,
                    reference, progress, clock,
                )  # fmt: skip
        except ExtractError as error:
            telemetry.quarantined(error)
            yield _contract_check(error)
            raise _reject(path, quarantine_dir, str(error), context.log) from None
        yield dg.AssetCheckResult(
            asset_key="batch_scores",
            check_name=SCHEMA_CHECK,
            passed=True,
            metadata={"rows": scored.rows, "typed_read": scored.typed_read},
        )
        with clock.stage("checks"):
            checks = [
                quality_check_result(scored.quality, asset_key="batch_scores"),
                drift_check_result(scored.drift),
            ]
        yield from checks
        with clock.stage("publish"):
            lake.publish(scored.scores_file, lake_dir, lake.SCORES, key)
            ensure_views(duckdb, lake_dir)
        scores_ready = time.perf_counter() - started  # scored and queryable
        if replaced:
            context.log.warning(f"{path.name}: {replaced}")
        context.log.info(
            f"scored {scored.rows:,} rows of {path.name} with {scorer.registered.name} "
            f"v{scorer.registered.version}; explaining {scored.candidates:,} candidates"
        )
        yield dg.MaterializeResult(
            asset_key="batch_scores",
            metadata={
                **_scores_metadata(scored, scorer, scores_ready),
                **({"replaced": replaced} if replaced else {}),
            },
        )
        staged = staging / "candidates.parquet"
        candidates = batch_scoring.explain_candidates(
            scored, identity, scorer, staged, config.chunk_rows, progress
        )
        lake.publish(staged, lake_dir, lake.CANDIDATES, key)
        lake.keep_in_history(lake_dir, key, context.run_id)
        estimated = batch_scoring.estimate_batch(
            lake.batch_file(lake_dir, lake.SCORES, key), identity, scorer, staging / "estimates"
        )
        lake.publish(staging / "estimates", lake_dir, lake.ESTIMATES, key)
        yield estimate_check_result(estimated)
        yield dg.MaterializeResult(
            asset_key="batch_candidates",
            metadata={
                "dagster/row_count": candidates,
                "seconds_to_queryable": round(time.perf_counter() - started, 3),
                "model_version": scorer.registered.version,
                "expected_precision": "holdout curve" if scorer.curve else "not available",
                "estimates": dg.MetadataValue.md(estimates.estimates_markdown(estimated)),
                "seconds": dg.MetadataValue.json(scored.stopwatch.seconds),
            },
        )
    finally:
        lake.discard_staging(staging)


def _replaces(previous: dict | None, digest: str, key: str) -> str | None:
    """What a new version of a batch replaces, in words; None for a first or unchanged file."""
    if not previous or previous.get("content_hash") in (None, digest):
        return None
    when = previous.get("scored_at")
    return (
        f"replaces batch {key!r}: its {previous['rows']:,} rows of different content "
        f"(sha256 {str(previous['content_hash'])[:12]}, from {previous.get('source_file')!r}"
        f"{f', scored {when:%Y-%m-%d %H:%M} UTC' if when else ''}) are replaced by this file's; "
        "the earlier list stays in batch_candidate_history"
    )


def _duplicate(context, path: Path, digest: str, duplicate_of: str):
    context.log.warning(
        f"{path.name}: same content (sha256 {digest[:12]}) already scored as batch "
        f"{duplicate_of!r}; no rows added"
    )
    yield dg.AssetObservation(
        asset_key="batch_scores",
        partition=context.partition_key,
        metadata={"duplicate_of": duplicate_of, "content_hash": digest, "file": path.name},
    )
    # The content was checked when batch `duplicate_of` was scored; nothing new to check.
    for check in (SCHEMA_CHECK, QUALITY_CHECK, DRIFT_CHECK, ESTIMATE_CHECK):
        yield dg.AssetCheckResult(
            asset_key="batch_scores",
            check_name=check,
            passed=True,
            description=f"same content as batch {duplicate_of!r}, checked when it was scored",
        )


def _scores_metadata(scored, scorer, seconds: float) -> dict:
    return {
        "dagster/row_count": scored.rows,
        "predicted_affluent": scored.predicted_affluent,
        "candidates": scored.candidates,
        "model_version": scorer.registered.version,
        "content_hash": scored.content_hash,
        "seconds_to_queryable": round(seconds, 3),
        "rows_per_second": round(scored.rows / max(seconds, 1e-9)),
        "seconds": dg.MetadataValue.json(
            {name: round(value, 3) for name, value in scored.stopwatch.seconds.items()}
        ),
    }


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


class ViewsConfig(dg.Config):
    lake_dir: str = ""  # empty: the configured default (AFFLUENT_LAKE or data/lake)


@dg.asset(group_name="landing", pool=DUCKDB_POOL)
def landed_batch_views(config: ViewsConfig, duckdb: DuckDBResource) -> dg.MaterializeResult:
    """The warehouse's views over landed batches (`batch_scores`, `batch_candidates`,
    `latest_candidates`), empty until the first file lands. Part of the main graph, which owns
    the warehouse's writes, so the landing runs find them in place and only read it."""
    lake_dir = config.lake_dir or settings.lake_dir()
    created = ensure_views(duckdb, lake_dir)
    views = list(lake.view_statements(lake_dir))
    return dg.MaterializeResult(metadata={"lake": lake_dir, "views": views, "created": created})


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


landing_job = dg.define_asset_job(
    "landing_job",
    selection=dg.AssetSelection.assets(batch_scores),
    partitions_def=landed_batches,
    description="Check, score and explain one landing file (one dynamic partition per file).",
    # One process: a landing file is scored seconds after it lands.
    executor_def=dg.in_process_executor,
)
