"""The web app's telemetry: a server span per request (OpenTelemetry's ASGI middleware), named by
its route template rather than its path (a path holds batch keys and file names), and the
request counter and latency histogram by route and status."""

from __future__ import annotations

import time

from opentelemetry import trace
from opentelemetry.metrics import Observation
from starlette.routing import Match

from affluent_assets.lib import lake, telemetry
from affluent_assets.lib.scorer import Stopwatch


def instrument(app, lake_dir: str) -> None:
    """Add both middlewares to a Starlette app when this process exports telemetry, and the
    gauge of the newest scored batch's age (this is the long-lived process that reads the
    lake)."""
    if not telemetry.active():
        return
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    telemetry.meter().create_observable_gauge(
        "affluent.batch.newest_age", callbacks=[lambda options: _newest_age(lake_dir)],
        unit="s", description="Seconds since the newest landed batch's scores were published",
    )  # fmt: skip

    app.add_middleware(RouteTelemetry, routes=app.routes)
    # Added last, so outermost: the span covers the bearer-token check and every answer.
    app.add_middleware(OpenTelemetryMiddleware, exclude_spans=["receive", "send"])


def _newest_age(lake_dir: str) -> list[Observation]:
    """The age of the newest published batch (the placeholder that keeps the view readable
    before any batch lands is not one); nothing before the first."""
    published = [p.stat().st_mtime for p in lake.table_dir(lake_dir, lake.SCORES).glob("*.parquet")
                 if p.name != lake.EMPTY_FILE]  # fmt: skip
    return [Observation(time.time() - max(published))] if published else []


def route_of(routes, scope) -> str:
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return getattr(route, "path", "") or "unmatched"
    return "unmatched"


class RouteTelemetry:
    """Inside the ASGI middleware's span: names it `METHOD route`, sets `http.route`, and counts
    the request by route and status when its answer starts."""

    def __init__(self, app, routes):
        self.app, self.routes = app, routes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        route, method = route_of(self.routes, scope), scope.get("method", "")
        span = trace.get_current_span()
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
        started, status = time.perf_counter(), {"code": 500}

        async def counted(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            labels = {"http.route": route, "http.request.method": method,
                      "http.response.status_code": status["code"]}  # fmt: skip
            figures = telemetry.instruments()
            figures.requests.add(1, labels)
            figures.latency.record(time.perf_counter() - started, labels)


def describe_scoring(rows: int, version: str, clock: Stopwatch) -> None:
    """An inference call's span: rows, model version and seconds per stage (validate, clean,
    features, predict, expected_precision, reasons)."""
    span = trace.get_current_span()
    span.set_attribute("affluent.rows", rows)
    span.set_attribute("affluent.model_version", version)
    for name, seconds in clock.seconds.items():
        span.set_attribute(f"affluent.seconds.{name}", round(seconds, 6))
    telemetry.instruments().rows.add(rows, {"path": "inference"})


def describe_violation(failures) -> None:
    """A refused request's span: which checks failed on which columns, never a value."""
    attributes = telemetry.violation_attributes(failures)
    trace.get_current_span().add_event("contract_violation", attributes=attributes)
