"""A real OTLP/HTTP receiver for tests: an HTTP server on a free loopback port that decodes the
protobuf `ExportTraceServiceRequest` (POST /v1/traces) and `ExportMetricsServiceRequest`
(POST /v1/metrics) the SDK's exporters send, and keeps what it got."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def _value(any_value) -> object:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in any_value.kvlist_value.values}
    return getattr(any_value, kind) if kind else None


def attributes(key_values) -> dict[str, object]:
    return {kv.key: _value(kv.value) for kv in key_values}


@dataclass(frozen=True)
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    start: int
    end: int
    attributes: dict
    events: list[tuple[str, dict]]
    status: int
    service: str

    @property
    def seconds(self) -> float:
        return (self.end - self.start) / 1e9


@dataclass
class Receiver:
    port: int = 0
    spans: list[Span] = field(default_factory=list)
    metric_points: list[tuple[str, str, dict]] = field(default_factory=list)  # name, service
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def take_traces(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        found = []
        for resource_spans in request.resource_spans:
            service = attributes(resource_spans.resource.attributes).get("service.name", "")
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    found.append(Span(
                        s.name, s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex(),
                        s.start_time_unix_nano, s.end_time_unix_nano, attributes(s.attributes),
                        [(e.name, attributes(e.attributes)) for e in s.events],
                        s.status.code, str(service),
                    ))  # fmt: skip
        with self.lock:
            self.spans.extend(found)

    def take_metrics(self, body: bytes) -> None:
        request = ExportMetricsServiceRequest.FromString(body)
        found = []
        for resource_metrics in request.resource_metrics:
            service = attributes(resource_metrics.resource.attributes).get("service.name", "")
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    data = MessageToDict(metric)
                    for kind in ("sum", "gauge", "histogram", "exponentialHistogram"):
                        for point in data.get(kind, {}).get("dataPoints", []):
                            found.append((metric.name, str(service), point))
        with self.lock:
            self.metric_points.extend(found)

    def wait_for(self, condition, what: str, seconds: float = 60):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                value = condition(self)
            if value:
                return value
            time.sleep(0.5)
        names = sorted({s.name for s in self.spans})
        raise AssertionError(f"timed out waiting for {what}; spans so far: {names}")


@contextlib.contextmanager
def otlp_receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with receiver.lock:
                receiver.requests += 1
            if self.path == "/v1/traces":
                receiver.take_traces(body)
                answer = ExportTraceServiceResponse()
            elif self.path == "/v1/metrics":
                receiver.take_metrics(body)
                answer = ExportMetricsServiceResponse()
            else:
                self.send_error(404)
                return
            payload = answer.SerializeToString()
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):  # quiet: the test reads what was received
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def otel_env(receiver: Receiver, service: str) -> dict[str, str]:
    """The standard variables that point a process at `receiver`, exporting often."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_SERVICE_NAME": service,
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        "OTEL_BSP_SCHEDULE_DELAY": "500",
    }
