"""Dagster's side of the traces (Dagster 1.13 has no OpenTelemetry of its own): the landing
sensor's span per requested file, the landing run's span continuing the file's trace from the
run's `traceparent` tag, and the main graph's runs as one trace each (`run_traces`).

One trace per file: the upload's POST saves its context beside the file (lib/telemetry
`save_traceparent`); the sensor's request span continues it (or starts a trace, for a file
dropped by hand) and puts its own context on the run as a tag; the run's span is its child and
every stage of the scoring (Stopwatch.stage) a child of the run's.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from datetime import UTC, datetime

import dagster as dg
from opentelemetry import trace

from affluent_assets import settings
from affluent_assets.lib import telemetry
from affluent_assets.lib.validation import ContractViolation
from affluent_assets.names import SCHEMA_CHECK

RUN_SPAN = "landing run"
TRACE_ID_TAG = "affluent/trace_id"


def request_traceparent(folder, name: str, batch_key: str, run_key: str) -> str | None:
    """The sensor's span for one file it requests a run for, and the traceparent that carries
    it to the run: the span is a child of the upload's trace when the file came over HTTP, else
    a new trace. Its sibling `landing wait` covers the file's time in the folder before this
    tick saw it. None with tracing off."""
    if not telemetry.enabled():
        return None
    saved, saved_at = telemetry.load_traceparent(folder, name)
    # Read once: a later file of the same name must not join this upload's trace.
    telemetry.sidecar(folder, name).unlink(missing_ok=True)
    parent = telemetry.context_from(saved)
    attributes = {"affluent.file": name, "affluent.batch_key": batch_key,
                  "affluent.run_key": run_key}  # fmt: skip
    if saved_at is not None:
        waited = telemetry.tracer().start_span(
            "landing wait", context=parent, attributes=attributes,
            start_time=int(saved_at * 1e9),
        )  # fmt: skip
        waited.end()
    with telemetry.span("landing_sensor request", attributes, parent):
        return telemetry.current_traceparent()


def traced_batch(
    context: dg.AssetExecutionContext, key: str, traceparent: str | None, steps: Generator
) -> Generator:
    """One file's steps in its span (named RUN_SPAN, a child of the span its sensor request
    made, so each file of a group keeps its own trace), with the batch's counts and model
    version from what it yields; returns what the steps return (the file's failure or None)."""
    attributes = {"dagster.run_id": context.run_id, "dagster.job": context.job_name,
                  "affluent.batch_key": key}  # fmt: skip
    started, outcome = time.perf_counter(), None
    try:
        with telemetry.span(RUN_SPAN, attributes, telemetry.context_from(traceparent)) as span:
            _join_logs(context, span, key)
            while True:
                try:
                    event = next(steps)
                except StopIteration as done:
                    failure = done.value
                    break
                outcome = _describe(span, event) or outcome
                yield event
            if failure is not None and outcome != "quarantined":
                outcome = "failed"
            outcome = outcome or "scored"
            span.set_attribute("affluent.outcome", outcome)
        return failure
    finally:
        _count(context.job_name, outcome or "failed", time.perf_counter() - started)
        telemetry.flush()


def _join_logs(context: dg.AssetExecutionContext, span: trace.Span, key: str) -> None:
    """The trace id in the run's log, whose lines then lead to the trace, and the trace to the
    run (`dagster.run_id`); the run's first file's as a run tag (searchable in the UI)."""
    ids = span.get_span_context()
    if not ids.is_valid:
        return
    trace_id, span_id = format(ids.trace_id, "032x"), format(ids.span_id, "016x")
    run = context.instance.get_run_by_id(context.run_id)
    if run is not None and TRACE_ID_TAG not in run.tags:
        context.instance.add_run_tags(context.run_id, {TRACE_ID_TAG: trace_id})
    context.log.info(f"{key}: trace_id={trace_id} span_id={span_id}")


def _describe(span: trace.Span, event) -> str | None:
    """Put a yielded event's counts on the run's span; the file's outcome, if it tells one."""
    if isinstance(event, dg.AssetObservation) and "duplicate_of" in event.metadata:
        return "duplicate"
    if isinstance(event, dg.AssetCheckEvaluation) and event.check_name == SCHEMA_CHECK:
        return "scored" if event.passed else "quarantined"
    if not isinstance(event, dg.AssetMaterialization) or event.metadata is None:
        return None
    prefix = f"affluent.{event.asset_key.path[-1]}"
    for name in ("dagster/row_count", "candidates", "model_version", "seconds_to_queryable"):
        value = event.metadata.get(name)
        value = getattr(value, "value", value)
        if isinstance(value, int | float | str):
            span.set_attribute(f"{prefix}.{name.removeprefix('dagster/')}", value)
    rows = event.metadata.get("dagster/row_count")
    if event.asset_key.path[-1] == "batch_scores" and rows is not None:
        telemetry.instruments().rows.add(int(getattr(rows, "value", rows)), {"path": "landing"})
    return None


def quarantined(error: Exception) -> None:
    """The event a quarantined file's run span gets: which checks failed on which columns
    (never a value: pandera's failure cases stay out)."""
    attributes: dict[str, object] = {"affluent.reason": type(error).__name__}
    if isinstance(error, ContractViolation):
        attributes |= telemetry.violation_attributes(error.failures)
    span = trace.get_current_span()
    span.add_event("quarantined", attributes=attributes)
    span.set_attribute("affluent.outcome", "quarantined")
    span.set_status(trace.StatusCode.ERROR, "quarantined")


def failed(error: Exception) -> None:
    """A file whose scoring failed for a reason other than its content."""
    telemetry.mark_failed(trace.get_current_span(), error)


def _count(job: str, outcome: str, seconds: float) -> None:
    figures = telemetry.instruments()
    figures.runs.record(seconds, {"dagster.job": job, "affluent.outcome": outcome})
    if outcome in ("scored", "quarantined", "duplicate"):
        figures.files.add(1, {"affluent.outcome": outcome})


# The main graph: each finished run retold as one trace, from the run's own event log. --------
RUN_TRACES_SECONDS = settings.monitoring_tick_seconds()
_STEP_EVENTS = {
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
}
_TRACED_LIVE = {"landing_job"}  # its runs trace themselves, continuing the file's trace


def _nanos(seconds: float) -> int:
    return int(seconds * 1e9)


def _events(instance: dg.DagsterInstance, run_id: str):
    records = instance.get_records_for_run(run_id, of_type=_STEP_EVENTS, limit=10_000).records
    return [record.event_log_entry for record in records]


def emit_run_trace(instance: dg.DagsterInstance, record) -> None:
    """One trace for a finished run: the run's span (its start to its end), a span per step
    (an asset, or a check of its own) and, inside, a span per check evaluated in that step.
    Written after the run, so a run of any executor or process count is one trace."""
    run = record.dagster_run
    started = record.start_time or record.create_timestamp.timestamp()
    ended = record.end_time or time.time()
    attributes = {"dagster.run_id": run.run_id, "dagster.job": run.job_name,
                  "dagster.status": run.status.value}  # fmt: skip
    root = telemetry.tracer().start_span(
        f"run {run.job_name}", attributes=attributes, start_time=_nanos(started)
    )
    parent = trace.set_span_in_context(root)
    starts: dict[str, float] = {}
    steps: dict[str, trace.Span] = {}
    for entry in _events(instance, run.run_id):
        event, key = entry.dagster_event, entry.step_key or ""
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[key] = entry.timestamp
            steps[key] = telemetry.tracer().start_span(
                f"step {key}", context=parent, start_time=_nanos(entry.timestamp),
                attributes={"dagster.step": key},
            )  # fmt: skip
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            _check_span(steps.get(key), parent, event, entry.timestamp)
        elif key in steps:
            failed = event.event_type == dg.DagsterEventType.STEP_FAILURE
            if failed:
                steps[key].set_status(trace.StatusCode.ERROR, "step failed")
            steps.pop(key).end(end_time=_nanos(entry.timestamp))
    for span in steps.values():
        span.end(end_time=_nanos(ended))
    if run.status != dg.DagsterRunStatus.SUCCESS:
        root.set_status(trace.StatusCode.ERROR, run.status.value)
    root.end(end_time=_nanos(ended))
    telemetry.instruments().runs.record(
        ended - started, {"dagster.job": run.job_name, "affluent.outcome": run.status.value}
    )


def _check_span(step: trace.Span | None, parent, event, timestamp: float) -> None:
    evaluation = event.event_specific_data
    context = trace.set_span_in_context(step) if step is not None else parent
    name = f"{evaluation.asset_key.to_user_string()}/{evaluation.check_name}"
    span = telemetry.tracer().start_span(
        f"check {name}", context=context, start_time=_nanos(timestamp),
        attributes={"dagster.check": name, "dagster.check.passed": bool(evaluation.passed)},
    )  # fmt: skip
    if not evaluation.passed:
        span.set_status(trace.StatusCode.ERROR, "check failed")
    span.end(end_time=_nanos(timestamp))


@dg.sensor(
    minimum_interval_seconds=RUN_TRACES_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="With an OTLP endpoint set: each finished run of the main graph (and any job "
    "but landing_job, which traces itself) as one trace, a span per asset and check.",
)
def run_traces(context: dg.SensorEvaluationContext):
    if not telemetry.enabled():
        return dg.SkipReason("no OTLP endpoint set (OTEL_EXPORTER_OTLP_ENDPOINT)")
    since = float(context.cursor) if context.cursor else time.time()
    records = context.instance.get_run_records(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE],
            updated_after=datetime.fromtimestamp(since, UTC),
        ),
        limit=50,
        ascending=True,
    )
    traced = 0
    for record in records:
        since = max(since, record.update_timestamp.timestamp())
        if record.dagster_run.job_name not in _TRACED_LIVE:
            emit_run_trace(context.instance, record)
            traced += 1
    telemetry.flush()
    return dg.SensorResult(skip_reason=f"{traced} run(s) traced", cursor=str(since))
