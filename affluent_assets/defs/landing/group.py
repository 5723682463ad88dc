"""A landing run's files: one run scores one file, or a group of small files that landed
together (a contiguous range of batch partitions, see the landing sensor), one after the other
with the champion loaded once. Each file keeps what a run of its own would give it: its own
materializations and checks (events of its partition), its own span in its own trace, its own
quarantine. A file that fails does not stop the others; the run fails at the end naming each
file that was not scored, so Dagster shows those partitions failed and the others materialized.
A run retried after a crash scores its files again: each batch is replaced whole (lake.publish),
so every file ends up scored once.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Generator, Iterator

import dagster as dg
from dagster_duckdb import DuckDBResource

from affluent_assets.defs import telemetry
from affluent_assets.defs.landing import run as landing_run
from affluent_assets.defs.landing.run import BatchFailure, BatchRejected
from affluent_assets.defs.resources import MlflowModels
from affluent_assets.lib import lake


def score_batches(
    context: dg.AssetExecutionContext,
    config,
    duckdb: DuckDBResource,
    mlflow_models: MlflowModels,
    progress: landing_run.ProgressCallback,
) -> Iterator:
    """Every file of the run, each as its own batch; Failure at the end if any was not."""
    started = time.perf_counter()
    champion = landing_run.run_champion(context, mlflow_models)
    keys = batch_keys(context, config)
    failures: list[BatchFailure] = []
    for key in keys:
        steps = _batch(context, config, key, champion, duckdb, progress, started)
        parent = config.traceparents.get(key)
        failure = yield from telemetry.traced_batch(context, key, parent, steps)
        if failure is not None:
            failures.append(failure)
    if failures:
        raise run_failure(failures, len(keys))
    yield from _check_outputs(context)


def _check_outputs(context: dg.AssetExecutionContext) -> Iterator[dg.Output]:
    """The step's check outputs, once: each file's check results went out as its partition's
    evaluations, which Dagster does not count as the outputs it waits for."""
    selected = context.selected_asset_check_keys
    for name, spec in context.assets_def.check_specs_by_output_name.items():
        if spec.key in selected:
            yield dg.Output(None, output_name=name)


def batch_keys(context: dg.AssetExecutionContext, config) -> list[str]:
    """The run's batches in partition order: its partition, or the range its sensor asked for
    (only the files it named: a key another process added inside the range is left alone)."""
    keys = context.partition_keys
    named = [key for key in keys if not config.files or key in config.files]
    if len(named) < len(keys):
        context.log.warning(
            "not scored here (not among the files this run was asked for): "
            + ", ".join(sorted(set(keys) - set(named)))
        )
    return named


def _batch(context, config, key, champion, duckdb, progress, started) -> Generator:
    """One file's steps as its partition's events; returns its failure or None."""
    try:
        batch = landing_run.start_batch(context, config, key, champion, progress, started)
        try:
            scored, replaced = yield from _partitioned(landing_run.score_file(batch, duckdb), key)
            if scored is not None:  # None: the same content is already scored as another batch
                steps = landing_run.publish_scores(batch, scored, replaced, duckdb)
                yield from _partitioned(steps, key)
                yield from _partitioned(landing_run.publish_candidates(batch, scored), key)
        finally:
            lake.discard_staging(batch.staging)
    except BatchRejected as rejected:
        return rejected.failure
    except dg.Failure as failure:  # no champion to score with: said for each file
        return BatchFailure(key, config.files.get(key), failure.description or str(failure))
    except Exception as error:  # a fault of this file's scoring, not of its content
        context.log.error(f"{key}: {type(error).__name__}: {error}\n{traceback.format_exc()}")
        telemetry.failed(error)
        return BatchFailure(key, config.files.get(key), f"{type(error).__name__}: {error}")
    return None


def _partitioned(steps: Generator, key: str) -> Generator:
    """The steps' events, each about partition `key` (one step scores several partitions, so
    an asset's result or a check's must say which); returns what the steps return."""
    while True:
        try:
            event = next(steps)
        except StopIteration as done:
            return done.value
        yield as_partition_event(event, key)


def as_partition_event(event, key: str):
    if isinstance(event, dg.AssetCheckResult):
        return dg.AssetCheckEvaluation(
            asset_key=event.asset_key or dg.AssetKey("batch_scores"),
            check_name=event.check_name,
            passed=event.passed,
            metadata=event.metadata,
            severity=event.severity,
            description=event.description,
            blocking=False,  # see assets._partitioned
            partition=key,
        )
    if isinstance(event, dg.MaterializeResult):
        return dg.AssetMaterialization(
            asset_key=event.asset_key, partition=key, metadata=event.metadata
        )
    return event


def run_failure(failures: list[BatchFailure], files: int) -> dg.Failure:
    """The run's failure: each file not scored, why, and where it was moved."""
    lines = [
        f.problem + (f" (moved to {f.quarantined_as})" if f.quarantined_as else "")
        for f in failures
    ]
    if files > 1:
        head = f"{len(failures)} of the run's {files} files not scored (the others are):"
        named = zip(failures, lines, strict=True)
        lines = [head, *(f"- {f.file or f.key}: {line}" for f, line in named)]
    return dg.Failure(
        description="\n".join(lines),
        metadata={
            "failed_batches": dg.MetadataValue.json(
                {
                    f.key: {
                        "file": f.file,
                        "problem": f.problem,
                        "quarantined_as": f.quarantined_as,
                    }
                    for f in failures
                }
            )
        },  # fmt: skip
    )
