"""OpenTelemetry for every process that does work (`affluent serve`, run workers, sensors, the
CLI): traces and metrics over OTLP/HTTP, configured by the standard OTEL_* variables only.

Off unless an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT`, or the per-signal
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `_METRICS_ENDPOINT`): then the API's no-op providers
stay in place, nothing is exported and a span costs a function call. `OTEL_SDK_DISABLED=true`
or `OTEL_TRACES_EXPORTER=none` / `OTEL_METRICS_EXPORTER=none` turn a signal off even with an
endpoint; `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` name the process (the SDK reads
them). Telemetry never carries a value from a row: attributes are keys, counts, versions,
checks and column names (see docs/observability.md).
"""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACER_NAME = "affluent_assets"
_PROPAGATOR = TraceContextTextMapPropagator()
_state: dict[str, object] = {"configured": False, "tracing": False, "providers": []}


def _off(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes")


def _endpoint(signal: str) -> str | None:
    return os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )


def _wanted(signal: str) -> bool:
    """A signal is exported when the SDK is on, its exporter is OTLP and an endpoint is set."""
    if _off(os.environ.get("OTEL_SDK_DISABLED")):
        return False
    exporter = os.environ.get(f"OTEL_{signal}_EXPORTER", "otlp").strip().lower()
    return exporter == "otlp" and bool(_endpoint(signal))


def setup(service_name: str) -> bool:
    """Install the SDK's providers once per process (later calls do nothing); True if traces
    are exported. `service_name` is the default when `OTEL_SERVICE_NAME` is not set."""
    if _state["configured"]:
        return bool(_state["tracing"])
    _state["configured"] = True
    traces, metered = _wanted("TRACES"), _wanted("METRICS")
    if not (traces or metered):
        return False
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    # Resource.create reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, which win.
    defaults = Resource({SERVICE_NAME: service_name})
    resource = defaults.merge(Resource.create({}))
    if resource.attributes.get(SERVICE_NAME, "").startswith("unknown_service"):
        resource = resource.merge(defaults)
    if traces:
        _install_tracing(resource)
    if metered:
        _install_metrics(resource)
    _install_log_correlation()
    atexit.register(shutdown)
    return traces


def _install_tracing(resource) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _state["tracing"] = True
    _state["providers"].append(provider)


def _install_metrics(resource) -> None:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    # OTEL_METRIC_EXPORT_INTERVAL (milliseconds, default 60 s) is read by the reader.
    reader = PeriodicExportingMetricReader(OTLPMetricExporter())
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    metrics.set_meter_provider(provider)
    _state["providers"].append(provider)


def enabled() -> bool:
    """True when spans of this process are exported."""
    return bool(_state["tracing"])


def active() -> bool:
    """True when spans or metrics of this process are exported."""
    return bool(_state["providers"])


def flush() -> None:
    """Export what is buffered now (a run worker calls it before its process ends)."""
    for provider in _state["providers"]:
        provider.force_flush()


def shutdown() -> None:
    for provider in _state["providers"]:
        provider.shutdown()
    _state["providers"] = []


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def meter() -> metrics.Meter:
    return metrics.get_meter(TRACER_NAME)


# Propagation: a W3C traceparent travels with a file (sidecar) and on a run (tag). -----------
def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get(TRACEPARENT)


def context_from(traceparent: str | None) -> otel_context.Context | None:
    """The remote parent a traceparent names, or None (then a span starts its own trace)."""
    if not traceparent:
        return None
    found = _PROPAGATOR.extract({TRACEPARENT: traceparent})
    valid = trace.get_current_span(found).get_span_context().is_valid
    return found if valid else None


def sidecar(folder: str | Path, name: str) -> Path:
    """Where a landed file's trace context waits for the sensor: beside the upload staging
    files, a dot-folder no sensor scans, so the landing folder itself holds only files."""
    from affluent_assets.lib.landing import UPLOAD_STAGING

    return Path(folder) / UPLOAD_STAGING / f"{name}.{TRACEPARENT}"


def save_traceparent(folder: str | Path, name: str) -> None:
    """Remember the current trace for the file `name` about to land in `folder`."""
    if not enabled() or (value := current_traceparent()) is None:
        return
    path = sidecar(folder, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value)


def load_traceparent(folder: str | Path, name: str) -> tuple[str | None, float | None]:
    """The traceparent saved for `name` and when it was saved (epoch seconds), if any."""
    path = sidecar(folder, name)
    try:
        return path.read_text().strip(), path.stat().st_mtime
    except OSError:
        return None, None


@contextmanager
def span(
    name: str, attributes: Mapping | None = None, parent: otel_context.Context | None = None
) -> Iterator[trace.Span]:
    """A span under `parent` (default: the current span), current inside the block. An
    exception marks it failed with the exception's type only: messages here name rows' values
    (a contract violation quotes them), which must not leave the process."""
    with tracer().start_as_current_span(
        name, context=parent, attributes=attributes,
        record_exception=False, set_status_on_exception=False,
    ) as current:  # fmt: skip
        try:
            yield current
        except Exception as error:
            mark_failed(current, error)
            raise


def mark_failed(current: trace.Span, error: Exception) -> None:
    """The span failed with `error`: its type only, never its message (see `span`)."""
    kind = type(error).__qualname__
    current.set_status(trace.StatusCode.ERROR, kind)
    current.add_event("exception", {"exception.type": kind})


# pandera's schema-wide checks whose failure case is a column's name (from the header), not a
# value from a row.
_HEADER_CHECKS = ("column_in_dataframe", "column_in_schema")


def violation_attributes(failures) -> dict[str, object]:
    """What a contract violation may tell telemetry (lib/validation failure cases): the checks and
    the columns they failed on and how many cases; never a failure case's value."""
    if failures is None or len(failures) == 0:
        return {}
    header = failures["check"].astype(str).isin(_HEADER_CHECKS)
    columns = set(failures.loc[header, "failure_case"].astype(str))
    columns |= set(failures.loc[~header & (failures["schema_context"] == "Column"), "column"])
    return {
        "affluent.checks": sorted({str(c) for c in failures["check"]}),
        "affluent.columns": sorted(str(c) for c in columns),
        "affluent.failure_cases": int(len(failures)),
    }


# Logs: every record carries the ids of the span current when it was made. ------------------
LOG_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [trace_id=%(otelTraceID)s span_id=%(otelSpanID)s] "
    "%(message)s"
)


def log_to_stderr(level: int = logging.INFO) -> None:
    """Root logging to stderr in LOG_FORMAT (a process's own logs, joined to its traces)."""
    logging.basicConfig(level=level, format=LOG_FORMAT)


def _install_log_correlation() -> None:
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        context = trace.get_current_span().get_span_context()
        record.otelTraceID = format(context.trace_id, "032x") if context.is_valid else "0"
        record.otelSpanID = format(context.span_id, "016x") if context.is_valid else "0"
        return record

    logging.setLogRecordFactory(factory)


# Metrics: created on the API's proxy meter, so they bind to the SDK once `setup` ran. --------
class _Instruments:
    def __init__(self) -> None:
        m = meter()
        self.requests = m.create_counter(
            "affluent.http.requests", unit="{request}", description="HTTP requests answered"
        )
        self.latency = m.create_histogram(
            "affluent.http.request.duration", unit="s", description="HTTP request latency"
        )
        self.rows = m.create_counter(
            "affluent.rows.scored", unit="{row}", description="Rows scored, by path"
        )
        self.files = m.create_counter(
            "affluent.files", unit="{file}", description="Landing files by outcome"
        )
        self.runs = m.create_histogram(
            "affluent.run.duration", unit="s", description="Dagster run durations"
        )


_instruments: _Instruments | None = None


def instruments() -> _Instruments:
    global _instruments
    if _instruments is None:
        _instruments = _Instruments()
    return _instruments
