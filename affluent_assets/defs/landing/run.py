"""The steps of scoring one landing file, between the asset Dagster calls (`batch_scores` in
assets.py, which runs them for each file of its run: group.py) and lib/batch_scoring: which file
and champion, what each step writes to the lake and yields to Dagster. A `LandingBatch` carries
what every step needs, in place of a chain of parameters; the warehouse side (views, drift
reference and check) is in views.py.

Each step is a generator of Dagster events, so a file reads as its three steps: score the file
(or find it a duplicate, or quarantine it), publish its scores, publish its candidates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from affluent_assets import settings
from affluent_assets.defs import telemetry
from affluent_assets.defs.ingest.assets import quality_check_result
from affluent_assets.defs.landing.estimate_check import estimate_check_result
from affluent_assets.defs.landing.views import drift_check_result, drift_reference, ensure_views
from affluent_assets.defs.resources import MlflowModels
from affluent_assets.lib import batch_scoring, batch_tables, estimates, lake, landing
from affluent_assets.lib.batch_scoring import ScoredBatch
from affluent_assets.lib.champion import ChampionUnavailable, ScoringModel, load_champion
from affluent_assets.lib.extract_checks import ExtractError
from affluent_assets.lib.extract_io import open_extract
from affluent_assets.lib.registry import CHAMPION_ALIAS
from affluent_assets.lib.scorer import Stopwatch
from affluent_assets.lib.validation import MAX_ROWS_NAMED, ContractViolation
from affluent_assets.names import (
    CHAMPION_VERSION_TAG,
    DRIFT_CHECK,
    ESTIMATE_CHECK,
    LANDING_FILE_TAG,
    QUALITY_CHECK,
    SCHEMA_CHECK,
)

ProgressCallback = Callable[[str, int], None]


@dataclass(frozen=True)
class BatchFailure:
    """Why one file of a run was not scored, and where it was moved if the file was the
    reason (None: it stays in the landing folder)."""

    key: str
    file: str | None
    problem: str
    quarantined_as: str | None = None


class BatchRejected(Exception):
    """One file of the run cannot be scored; the run goes on with its other files."""

    def __init__(self, failure: BatchFailure):
        super().__init__(failure.problem)
        self.failure = failure


@dataclass
class LandingBatch:
    """One landing file within a run: where it is, where its results go, what scores it."""

    context: dg.AssetExecutionContext
    path: Path
    lake_dir: str
    quarantine_dir: str
    chunk_rows: int
    scorer: ScoringModel
    identity: batch_tables.BatchIdentity
    progress: ProgressCallback
    clock: Stopwatch
    started: float  # when the run started: a file's time to queryable counts from there
    staging: Path  # this batch's own folder in the lake's staging area (lake.staging_dir)

    @property
    def key(self) -> str:
        return self.identity.batch_key

    def seconds(self) -> float:
        """Since the run started: the time to queryable, once something is published."""
        return time.perf_counter() - self.started

    def publish(self, staged: Path, table: str) -> None:
        lake.publish(staged, self.lake_dir, table, self.key)


PROGRESS_LOG_SECONDS = 5.0


def start_batch(
    context: dg.AssetExecutionContext,
    config,
    key: str,
    champion: Callable[[], ScoringModel],
    scoring_progress: ProgressCallback,
    started: float,
) -> LandingBatch:
    """Batch `key`'s file (BatchRejected if it is gone) and the run's champion (`champion`
    loads it on the run's first file, whose `model` stage it is, and hands it on after)."""
    clock = Stopwatch(traced=True)  # every stage until queryable, for the breakdown and trace
    folder = config.landing_dir or settings.landing_dir()
    if config.file_name:
        path = landing.resolve_inside(folder, config.file_name)
        path = path if path.is_file() else None
    else:
        path = landing.find_batch_file(folder, key)
    if path is None:
        problem = f"batch {key!r}: no landing file for it in {folder}"
        raise BatchRejected(BatchFailure(key, config.files.get(key), problem))
    with clock.stage("model"):
        scorer = champion()

    logged = {"phase": "", "at": 0.0}

    def progress(phase: str, rows: int) -> None:
        scoring_progress(phase, rows)
        # Each log line is an event written to the instance (about 5 ms): a line per phase
        # and then one every PROGRESS_LOG_SECONDS, not one per chunk.
        now = time.perf_counter()
        if phase != logged["phase"] or now - logged["at"] >= PROGRESS_LOG_SECONDS:
            context.log.debug(f"{key}: {phase}: {rows:,} rows")
            logged.update(phase=phase, at=now)

    lake_dir = config.lake_dir or settings.lake_dir()
    return LandingBatch(
        context=context,
        path=path,
        lake_dir=lake_dir,
        quarantine_dir=config.quarantine_dir or settings.quarantine_dir(),
        chunk_rows=config.chunk_rows,
        scorer=scorer,
        identity=batch_tables.BatchIdentity(
            key, path.name, context.run_id, datetime.now(UTC).replace(tzinfo=None)
        ),
        progress=progress,
        clock=clock,
        started=started,
        staging=lake.staging_dir(lake_dir, key),
    )


def run_champion(
    context: dg.AssetExecutionContext, mlflow_models: MlflowModels
) -> Callable[[], ScoringModel]:
    """The run's scorer, loaded once for all its files when the first one asks; a champion
    that cannot be loaded fails every file with the same reason."""
    loaded: list = []

    def champion() -> ScoringModel:
        if not loaded:
            try:
                loaded.append(_champion(mlflow_models, requested_version(context.run)))
            except dg.Failure as failure:
                loaded.append(failure)
        if isinstance(loaded[0], dg.Failure):
            raise loaded[0]
        return loaded[0]

    return champion


def requested_version(run: dg.DagsterRun) -> str | None:
    """The champion version the run's sensor asked for; None (the champion now) for a run
    re-executed from the UI or retried: Dagster copies the tags of the run it re-executes,
    and a file scored again after a promotion must not be scored with the version before it
    (the rescoring sensor would then see the batch current, or find its run key used)."""
    return None if run.parent_run_id else run.tags.get(CHAMPION_VERSION_TAG)


def _champion(mlflow_models: MlflowModels, version: str | None) -> ScoringModel:
    """The version the run was asked for (its sensor's champion), else the champion now."""
    try:
        return load_champion(
            mlflow_models.tracking_uri,
            mlflow_models.model_name,
            alias=version or CHAMPION_ALIAS,
            cache_dir=settings.champion_cache_dir(),
        )
    except ChampionUnavailable as error:
        raise dg.Failure(description=f"cannot score the run's files: {error}") from None


def score_file(
    run: LandingBatch, duckdb: DuckDBResource
) -> Iterator[dg.AssetCheckResult | dg.AssetObservation]:
    """Score the file into the staging folder; return what was scored, or None for content
    already scored as another batch. A file that cannot be read or breaks the contract fails
    its schema check and is quarantined; the run fails naming file, columns and rows."""
    clock, lake_dir = run.clock, run.lake_dir
    try:
        with open_extract(run.path) as extract:
            with clock.stage("hash"):
                digest = extract.sha256()
                duplicate_of = lake.scored_elsewhere(lake_dir, digest, run.key)
                replaced = _replaces(lake.batch_summary(lake_dir, run.key), digest, run.key)
            if duplicate_of is not None:
                yield from _duplicate(run, digest, duplicate_of)
                return None, None
            with clock.stage("drift_reference"):
                reference = drift_reference(duckdb)
            scored = batch_scoring.score_extract(
                extract, digest, run.identity, run.scorer, run.staging, run.chunk_rows,
                reference, run.progress, clock,
            )  # fmt: skip
    except ExtractError as error:
        telemetry.quarantined(error)
        yield _contract_check(error)
        raise BatchRejected(_reject(run, str(error))) from None
    return scored, replaced


def publish_scores(
    run: LandingBatch, scored: ScoredBatch, replaced: str | None, duckdb: DuckDBResource
) -> Iterator[dg.AssetCheckResult | dg.MaterializeResult]:
    """The batch's checks, then its scores in the lake and the warehouse's views over them."""
    yield dg.AssetCheckResult(
        asset_key="batch_scores",
        check_name=SCHEMA_CHECK,
        passed=True,
        metadata={"rows": scored.rows, "typed_read": scored.typed_read},
    )
    with run.clock.stage("checks"):
        checks = [
            quality_check_result(scored.quality, asset_key="batch_scores"),
            drift_check_result(scored.drift),
        ]
    yield from checks
    with run.clock.stage("publish"):
        run.publish(scored.scores_file, lake.SCORES)
        ensure_views(duckdb, run.lake_dir)
    scores_ready = run.seconds()  # scored and queryable
    log, registered = run.context.log, run.scorer.registered
    if replaced:
        log.warning(f"{run.path.name}: {replaced}")
    log.info(
        f"scored {scored.rows:,} rows of {run.path.name} with {registered.name} "
        f"v{registered.version}; explaining {scored.candidates:,} candidates"
    )
    yield dg.MaterializeResult(
        asset_key="batch_scores",
        metadata={
            **_scores_metadata(scored, run.scorer, scores_ready),
            **({"replaced": replaced} if replaced else {}),
        },
    )


def publish_candidates(
    run: LandingBatch, scored: ScoredBatch
) -> Iterator[dg.AssetCheckResult | dg.MaterializeResult]:
    """The candidates with their reasons, the list kept in history, and the batch's estimates."""
    staged = run.staging / "candidates.parquet"
    candidates = batch_scoring.explain_candidates(
        scored, run.identity, run.scorer, staged, run.chunk_rows, run.progress
    )
    with run.clock.stage("publish_candidates"):
        run.publish(staged, lake.CANDIDATES)
        lake.keep_in_history(run.lake_dir, run.key, run.context.run_id)
    listed_ready = run.seconds()  # the list with its reasons is queryable (the estimates are
    # a table of their own, batch_estimates, published next)
    with run.clock.stage("estimates"):
        scores_file = lake.batch_file(run.lake_dir, lake.SCORES, run.key)
        estimated = batch_scoring.estimate_batch(
            scores_file, run.identity, run.scorer, run.staging / "estimates"
        )
        run.publish(run.staging / "estimates", lake.ESTIMATES)
    yield estimate_check_result(estimated)
    yield dg.MaterializeResult(
        asset_key="batch_candidates",
        metadata={
            "dagster/row_count": candidates,
            "seconds_to_queryable": round(listed_ready, 3),
            "model_version": run.scorer.registered.version,
            "expected_precision": "holdout curve" if run.scorer.curve else "not available",
            "estimates": dg.MetadataValue.md(estimates.estimates_markdown(estimated)),
            "seconds": dg.MetadataValue.json(scored.stopwatch.seconds),
        },
    )


def _reject(run: LandingBatch, problem: str) -> BatchFailure:
    moved = landing.quarantine(run.path, run.quarantine_dir, problem)
    run.context.log.error(f"{problem}\nquarantined as {moved}")
    return BatchFailure(run.key, run.path.name, problem, str(moved))


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


def _duplicate(run: LandingBatch, digest: str, duplicate_of: str):
    run.context.log.warning(
        f"{run.path.name}: same content (sha256 {digest[:12]}) already scored as batch "
        f"{duplicate_of!r}; no rows added"
    )
    yield dg.AssetObservation(
        asset_key="batch_scores",
        partition=run.key,
        metadata={"duplicate_of": duplicate_of, "content_hash": digest, "file": run.path.name},
    )
    # The content was checked when batch `duplicate_of` was scored; nothing new to check.
    for check in (SCHEMA_CHECK, QUALITY_CHECK, DRIFT_CHECK, ESTIMATE_CHECK):
        yield dg.AssetCheckResult(
            asset_key="batch_scores",
            check_name=check,
            passed=True,
            description=f"same content as batch {duplicate_of!r}, checked when it was scored",
        )


def _scores_metadata(scored: ScoredBatch, scorer: ScoringModel, seconds: float) -> dict:
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


IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def files_in_flight(instance: dg.DagsterInstance) -> set[str]:
    """Landing files with a run queued or under way, alone or in a group. Such a run scores
    with the version its sensor named, possibly the one before a promotion, and writes its
    batch when it is done: a second run of the same file asked for meanwhile could finish
    first and be overwritten by the older content or version."""
    runs = instance.get_runs(filters=dg.RunsFilter(job_name="landing_job", statuses=IN_FLIGHT))
    return {
        name
        for run in runs
        for name in [*landing.run_batches(run.tags, run.run_config).values(),
                     run.tags.get(LANDING_FILE_TAG)]
        if name
    }  # fmt: skip
