"""Retraining on new data: a new or changed extract in the extract folder (data/raw/) starts
the main graph, so the model and the lists refresh without anyone clicking. The file must have
stopped changing for one tick, and is only "new" if it changed after the last successful run of
the main graph (so `make dev` after `make run` does not train again on the same file)."""

from __future__ import annotations

import json

import dagster as dg

from affluent_assets.defs.resources import ExtractSource
from affluent_assets.lib.extract_io import find_extract

MAIN_JOB = "affluent_job"
TICK_SECONDS = 30


def last_main_run_at(instance: dg.DagsterInstance) -> float | None:
    """Unix time the main graph last finished successfully, if ever."""
    records = instance.get_run_records(
        dg.RunsFilter(job_name=MAIN_JOB, statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1
    )
    if not records:
        return None
    record = records[0]
    return record.end_time or record.update_timestamp.timestamp()


@dg.sensor(
    name="new_extract_sensor",
    job_name=MAIN_JOB,
    minimum_interval_seconds=TICK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Runs the main graph (retraining, rescoring) when a new extract lands in the "
    "extract folder and has stopped changing.",
)
def new_extract_sensor(context: dg.SensorEvaluationContext, extract: ExtractSource):
    path = find_extract(extract.location)
    if path is None:
        return dg.SkipReason(f"no extract file in {extract.location} (demo data stands in)")
    stat = path.stat()
    signature = f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"
    cursor = json.loads(context.cursor) if context.cursor else {}
    if cursor.get("requested") == signature:
        return dg.SkipReason(f"{path.name}: already trained on")
    trained_at = last_main_run_at(context.instance)
    if trained_at is not None and stat.st_mtime <= trained_at:
        return dg.SensorResult(
            skip_reason=f"{path.name}: unchanged since the last main-graph run",
            cursor=json.dumps({"seen": signature, "requested": signature}),
        )
    if cursor.get("seen") != signature:  # new or still being written: wait one tick
        return dg.SensorResult(
            skip_reason=f"{path.name}: new extract, waiting one tick for it to stop changing",
            cursor=json.dumps({**cursor, "seen": signature}),
        )
    context.log.info(f"new extract {path.name}: starting {MAIN_JOB}")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=signature, tags={"affluent/extract": path.name})],
        cursor=json.dumps({"seen": signature, "requested": signature}),
    )
