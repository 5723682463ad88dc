"""The landing sensor: a run for each new or changed file once it has stopped changing (seen
twice at the same size and mtime, or first seen with an mtime older than a tick); small new
files that are ready in the same tick share a run (lib/landing.group_ready), each still its own
batch with its own checks, quarantine and exactly-once run key in the cursor.

A tick only lists and stats the folder (reading and hashing happen in the run), keeps the files
it has requested and the ones still settling in its cursor, and adds each file's partition in
the same result that requests its run.
"""

import hashlib
import time
from collections.abc import Callable
from dataclasses import replace

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from affluent_assets import settings
from affluent_assets.defs import telemetry
from affluent_assets.defs.landing.assets import landed_batches, landing_job
from affluent_assets.defs.landing.run import files_in_flight
from affluent_assets.defs.resources import MlflowModels
from affluent_assets.lib import landing
from affluent_assets.lib.registry import CHAMPION_ALIAS
from affluent_assets.names import CHAMPION_VERSION_TAG, LANDING_FILE_TAG

# A file is ready once it has not changed for 2 s (as file-watching tools check, e.g. Apache
# Camel's 1 s read lock). Dagster's daemon starts a sensor's tick every 5 s at most, whatever
# its interval, so a tick with nothing ready watches the folder (every POLL_SECONDS, for up to
# settings.landing_watch_seconds()) and a file landing between ticks is requested when it is
# ready, not at the next tick: 2.5 s sooner on average.
TICK_SECONDS = 2
POLL_SECONDS = 0.25


def _summary(plan: landing.TickPlan, ignored: dict[str, str]) -> str:
    parts = []
    if plan.settling:
        names = ", ".join(s.name for s in plan.settling[:5])
        parts.append(f"{len(plan.settling)} file(s) still settling ({names})")
    if plan.unchanged:
        parts.append(f"{len(plan.unchanged)} file(s) already scored and unchanged")
    if plan.removed:
        parts.append(f"{len(plan.removed)} file(s) gone from the folder")
    if ignored:
        shown = "; ".join(f"{name!r}: {why}" for name, why in sorted(ignored.items())[:5])
        more = f" and {len(ignored) - 5} more" if len(ignored) > 5 else ""
        parts.append(f"{len(ignored)} entries not scored ({shown}{more})")
    return "; ".join(parts) or "no landing files"


def _report_ignored(context, cursor: landing.LandingCursor, ignored: dict[str, str]) -> None:
    """Log each entry that is not scored once, with why; the cursor remembers what was said."""
    for name in sorted(set(ignored) - set(cursor.ignored)):
        context.log.warning(f"landing folder: {name!r} is not scored: {ignored[name]}")
    cursor.ignored = sorted(ignored)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def watch_folder(
    cursor: landing.LandingCursor, folder: str, clock: Callable[[], int], watch_seconds: float
) -> landing.TickPlan:
    """This tick's plan. While no file is ready, the folder is listed again every POLL_SECONDS
    for up to `watch_seconds`, each time against the previous tick's cursor (so "unchanged
    since the last tick" keeps its meaning) and the time now (so a file that has stopped
    changing for TICK_SECONDS becomes ready within the watch)."""
    deadline = time.monotonic() + watch_seconds
    first = None
    while True:
        quiet_since = clock() - TICK_SECONDS * 1_000_000_000
        plan = landing.plan_tick(cursor, landing.scan_landing(folder), quiet_since)
        first = first or plan
        if plan.ready or time.monotonic() + POLL_SECONDS > deadline:
            break
        time.sleep(POLL_SECONDS)
    if plan is not first:
        # The next tick confirms a file as unchanged against what this tick saw when it began,
        # a whole tick before, not against its last look a moment before: a file that changed
        # during the watch is seen as new by the next tick.
        pending = plan.cursor.pending
        kept = {n: s for n, s in pending.items() if first.cursor.pending.get(n) == s}
        plan = replace(plan, cursor=replace(plan.cursor, pending=kept))
    return plan


def build_landing_sensor(
    name: str = "landing_sensor",
    landing_dir: str | None = None,
    clock: Callable[[], int] = time.time_ns,
    watch_seconds: float | None = None,
) -> dg.SensorDefinition:
    """The sensor over `landing_dir` (default: the configured landing folder, read each tick);
    `clock` tells the time (ns) that a file's mtime is compared with; `watch_seconds` how long
    a tick with nothing ready keeps looking (default: settings.landing_watch_seconds())."""

    @dg.sensor(
        name=name,
        target=landing_job,
        minimum_interval_seconds=TICK_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Scores each .csv/.xlsx/.parquet file dropped in the landing folder with the "
            "champion model, once it has not changed for one tick."
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext, mlflow_models: MlflowModels):
        folder = landing_dir or settings.landing_dir()
        cursor = landing.LandingCursor.deserialize(context.cursor)
        watch = settings.landing_watch_seconds() if watch_seconds is None else watch_seconds
        plan = watch_folder(cursor, folder, clock, watch)
        ignored = landing.ignored_entries(folder)
        _report_ignored(context, plan.cursor, ignored)
        if not plan.ready:
            return dg.SensorResult(
                skip_reason=_summary(plan, ignored), cursor=plan.cursor.serialize()
            )
        try:
            model = mlflow_models.describe(CHAMPION_ALIAS)
            problem = "" if model is not None else "nothing registered under that alias yet"
        except Exception as error:  # the registry is unreachable or unreadable
            model, problem = None, f"{type(error).__name__}: {_first_line(error)}"
        if model is None:
            return dg.SensorResult(
                skip_reason=(
                    f"{len(plan.ready)} file(s) ready but no {CHAMPION_ALIAS!r} version of "
                    f"model {mlflow_models.model_name!r} to score them with ({problem}); "
                    "train it with affluent_job first"
                ),
                cursor=landing.hold_back(plan).serialize(),
            )
        return _request(context, plan, folder, str(model.version))

    return _sensor


def _request(
    context: dg.SensorEvaluationContext, plan: landing.TickPlan, folder: str, version: str
) -> dg.SensorResult:
    """The tick's runs: small new files in groups, each other file alone. A file whose earlier
    version still has a run queued or under way waits for it (stays pending), so two runs
    never write one batch at once and the newer content is the one kept."""
    busy = files_in_flight(context.instance)
    held = [s for s in plan.ready if s.name in busy]
    known = set(context.instance.get_dynamic_partitions(landed_batches.name))
    groups = landing.group_ready(
        [s for s in plan.ready if s.name not in busy], known,
        settings.landing_group_files(), settings.landing_group_max_bytes(),
    )  # fmt: skip
    new_keys = [s.batch_key for g in groups for s in g if s.batch_key not in known]
    new_keys = list(dict.fromkeys(new_keys))
    if groups:
        context.log.info(
            f"requesting {len(groups)} run(s) for {sum(map(len, groups))} file(s) with "
            f"v{version}: " + "; ".join(", ".join(s.name for s in g) for g in groups)
        )
    if held:
        context.log.info("waiting for the runs under way of: " + ", ".join(s.name for s in held))
    return dg.SensorResult(
        run_requests=[_run_request(g, folder, version) for g in groups],
        dynamic_partitions_requests=(
            [landed_batches.build_add_request(new_keys)] if new_keys else []
        ),
        cursor=landing.hold_back(plan, held).serialize(),
        skip_reason=None
        if groups
        else f"{len(held)} file(s) wait for the runs of their earlier versions under way",
    )


def _run_request(group: list[landing.FileSignature], folder: str, version: str) -> dg.RunRequest:
    """One run for a group of files (one file, or a contiguous range of new batch keys),
    scoring with the champion version the tick saw. Each file's trace continues in the run."""
    config = {
        "landing_dir": str(folder),
        "files": {s.batch_key: s.name for s in group},
        "traceparents": {
            s.batch_key: parent
            for s in group
            if (parent := telemetry.request_traceparent(folder, s.name, s.batch_key, s.run_key))
        },
    }
    tags = {CHAMPION_VERSION_TAG: version}
    if len(group) == 1:
        (signature,) = group
        return dg.RunRequest(
            run_key=signature.run_key,
            partition_key=signature.batch_key,
            run_config={"ops": {"batch_scores": {"config": config}}},
            tags={LANDING_FILE_TAG: signature.name, **tags},
        )
    joined = "\n".join(s.run_key for s in group).encode()
    return dg.RunRequest(
        run_key=f"group:{len(group)}:{hashlib.sha256(joined).hexdigest()[:24]}",
        run_config={"ops": {"batch_scores": {"config": config}}},
        tags={
            ASSET_PARTITION_RANGE_START_TAG: group[0].batch_key,
            ASSET_PARTITION_RANGE_END_TAG: group[-1].batch_key,
            **tags,
        },
    )


landing_sensor = build_landing_sensor()
