"""OpenTelemetry against a real OTLP/HTTP receiver (affluent_assets_tests/otlp.py): inference
calls as spans with their stages and metrics; one trace per uploaded file under `dagster dev`,
from the POST to the publication; a bad file's quarantine event; no customer value on any span
or metric point; nothing sent without an endpoint, or with the SDK disabled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from affluent_assets.lib.demo_data import generate_customers
from affluent_assets.lib.demo_files import write_extract
from affluent_assets_tests.defs.conftest import register_tiny_model
from affluent_assets_tests.otlp import Receiver, Span, otel_env, otlp_receiver
from affluent_assets_tests.servers import (
    DAGSTER,
    AffluentServe,
    DagsterStores,
    count_rows,
    stop,
    wait_for,
)

STAGES = {"model", "hash", "drift_reference", "read", "validate", "clean", "features",
          "predict", "write", "checks", "publish", "expected_precision", "reasons"}  # fmt: skip


def customer_values(frame: pd.DataFrame) -> set[str]:
    """Every cell of `frame` that could identify a customer or a value of theirs, as text (short
    integers are left out: a count of 3 rows is not the value 3 of a row)."""
    values = set()
    for column in frame.columns:
        for value in frame[column].dropna().unique():
            text = str(value)
            if len(text) >= 4 or not text.lstrip("-").isdigit():
                values.add(text)
    return values


def flat(value) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


# The platform's own measurements of a run: a duration or a count can equal some customer's
# balance by chance (a run took 1.13 s; a row holds 1.13), so these are held to being numbers
# instead of being compared with the rows.
MEASUREMENTS = (".row_count", ".candidates", ".seconds_to_queryable", "affluent.rows")


def leaks(key: str, value, forbidden: set[str]) -> bool:
    if key.endswith(MEASUREMENTS) or key.startswith("affluent.seconds."):
        assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
        return False
    return bool(set(flat(value)) & forbidden)


def assert_no_customer_data(receiver: Receiver, frame: pd.DataFrame) -> None:
    """No attribute of any span, span event or metric point holds a value from `frame`."""
    forbidden = customer_values(frame)
    found = []
    for span in receiver.spans:
        bags = [span.attributes, *(attrs for _, attrs in span.events)]
        found += [(span.name, k, v) for bag in bags for k, v in bag.items()
                  if leaks(k, v, forbidden)]  # fmt: skip
    for name, _, point in receiver.metric_points:
        for key, value in point_attributes(point).items():
            if str(value) in forbidden:
                found.append((name, key, value))
    assert not found, f"customer values in telemetry: {found[:5]}"
    assert receiver.spans and receiver.metric_points


def named(receiver: Receiver, name: str, count: int) -> list[Span] | None:
    found = [s for s in receiver.spans if s.name == name]
    return found if len(found) >= count else None


def point_attributes(point: dict) -> dict:
    return {a["key"]: next(iter(a["value"].values())) for a in point.get("attributes", [])}


def routes(receiver: Receiver) -> set[str]:
    """The routes the request counter has counted."""
    return {point_attributes(p).get("http.route") for n, _, p in receiver.metric_points
            if n == "affluent.http.requests"}  # fmt: skip


def serve_env(stores: DagsterStores, receiver: Receiver | None) -> dict:
    env = {**stores.env(), "AFFLUENT_SERVE_POLL_SECONDS": "0.5"}
    return env | (otel_env(receiver, "affluent-serve-test") if receiver else {})


def invoke(server: AffluentServe, rows: pd.DataFrame):
    body = json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split", index=False))})
    return server.request(
        "POST", "/invocations", body.encode(), {"Content-Type": "application/json"}
    )


def test_inference_calls_are_spans_with_stages_and_metrics(tmp_path):
    models = register_tiny_model(tmp_path / "mlflow")
    stores = DagsterStores(tmp_path, models.tracking_uri, models.artifact_root)
    rows = generate_customers(30, seed=5).drop(columns="C_seg")
    bad = rows.head(3).astype({"MTHCASA": object})
    bad.loc[bad.index[1], "MTHCASA"] = "twelve"
    with otlp_receiver() as receiver:
        server = AffluentServe(serve_env(stores, receiver)).wait()
        try:
            server.wait_ready()
            assert invoke(server, rows)[0] == 200
            assert invoke(server, bad)[0] == 422
            assert server.upload("etb.csv", b"C_ID\n1\n")[0] == 202
            spans = receiver.wait_for(lambda r: named(r, "POST /invocations", 2), "both calls")
            receiver.wait_for(
                lambda r: {"/invocations", "/api/batches"} <= routes(r), "request counts"
            )
        finally:
            stop(server.process)
    scored, refused = sorted(spans, key=lambda s: s.attributes["http.status_code"])
    assert scored.attributes["http.route"] == "/invocations"
    assert scored.attributes["affluent.rows"] == 30
    assert scored.attributes["affluent.model_version"] == models.model.version
    for stage in ("validate", "clean", "features", "predict", "reasons"):
        assert scored.attributes[f"affluent.seconds.{stage}"] >= 0
    assert scored.service == "affluent-serve-test"
    [(event, attributes)] = refused.events
    assert event == "contract_violation" and "MTHCASA" in attributes["affluent.columns"]
    upload = next(s for s in receiver.spans if s.name == "POST /api/batches")
    [sidecar] = stores.landing.joinpath(".uploads").glob("*.traceparent")
    assert upload.trace_id in sidecar.read_text()
    names = {n for n, _, _ in receiver.metric_points}
    print("metrics received:", sorted(names))
    assert "affluent.rows.scored" in names
    assert_no_customer_data(receiver, pd.concat([rows, bad.astype(str)]))


def test_nothing_is_sent_without_an_endpoint_or_with_the_sdk_off(tmp_path):
    with otlp_receiver() as receiver:
        # An endpoint, but the standard switch turns the SDK off.
        env = otel_env(receiver, "off") | {"OTEL_SDK_DISABLED": "true"}
        probe = (
            "from opentelemetry import trace\n"
            "from affluent_assets.lib import telemetry\n"
            "on = telemetry.setup('probe')\n"
            "with telemetry.span('nothing'):\n"
            "    pass\n"
            "telemetry.flush()\n"
            "print(on, type(trace.get_tracer_provider()).__name__)\n"
        )
        base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        exporters_off = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}
        for extra in ({}, env, otel_env(receiver, "none") | exporters_off):
            answer = subprocess.run(
                [sys.executable, "-c", probe], env=base | extra, capture_output=True, text=True,
                check=True, timeout=120,
            )  # fmt: skip
            assert answer.stdout.split() == ["False", "ProxyTracerProvider"]
        time.sleep(1)
        assert receiver.requests == 0


def children(spans: list[Span], parent: Span) -> list[Span]:
    return [s for s in spans if s.parent_id == parent.span_id]


def timeline(spans: list[Span], root: Span, depth: int = 0) -> list[str]:
    """The trace as indented text: offset from the root's start, duration, name, service."""
    start = min(s.start for s in spans)
    lines = [f"{(root.start - start) / 1e9:8.3f}s {root.seconds * 1000:9.1f} ms  "
             f"{'  ' * depth}{root.name}  [{root.service}]"]  # fmt: skip
    for child in sorted(children(spans, root), key=lambda s: s.start):
        lines += timeline(spans, child, depth + 1)
    return lines


@pytest.mark.skipif(not DAGSTER.exists(), reason="dagster CLI not installed in this environment")
def test_one_trace_from_upload_to_publication_under_dagster_dev(tmp_path):
    models = register_tiny_model(tmp_path / "mlflow")
    stores = DagsterStores(tmp_path, models.tracking_uri, models.artifact_root)
    frame = generate_customers(2_000, seed=21).drop(columns="C_seg")
    content = write_extract(frame, tmp_path / "etb week 1.csv").read_bytes()
    log = tmp_path / "dagster-dev.log"
    with otlp_receiver() as receiver:
        env = otel_env(receiver, "affluent-test")
        stores_env = stores.env
        stores.env = lambda: stores_env() | env  # dagster dev and its processes export too
        server = stores.start(log)
        serve = AffluentServe(serve_env(stores, receiver)).wait()
        try:
            assert serve.upload("etb week 1.csv", content)[0] == 202
            listed = "select count(*) from latest_candidates"
            wait_for(lambda: count_rows(stores.warehouse, listed, []), "the list", server, log)
            post = receiver.wait_for(
                lambda r: next((s for s in r.spans if s.name == "POST /api/batches"), None),
                "the upload's span",
            )
            trace = receiver.wait_for(
                lambda r: _whole(r.spans, post.trace_id), "the run's stage spans", 90
            )
            (stores.landing / "broken.csv").write_text("C_ID,C_AGE\n1,forty\n")
            run = receiver.wait_for(
                lambda r: next((s for s in r.spans if s.name == "landing run"
                                and s.events and s.trace_id != post.trace_id), None),
                "the bad file's run span", 150,
            )  # fmt: skip
            metrics = {"affluent.batch.newest_age", "affluent.files", "affluent.run.duration",
                       "affluent.rows.scored", "affluent.http.requests"}  # fmt: skip
            receiver.wait_for(lambda r: metrics <= {n for n, _, _ in r.metric_points}, "metrics")
        finally:
            stop(serve.process)
            stop(server)
    by_name = {s.name: s for s in trace}
    names = ("landing_sensor request", "landing wait", "landing run")
    sensor, wait, landing_run = (by_name[name] for name in names)
    assert sensor.parent_id == post.span_id and wait.parent_id == post.span_id
    assert landing_run.parent_id == sensor.span_id
    stages = {s.name.removeprefix("stage ") for s in children(trace, landing_run)}
    assert stages >= STAGES
    assert landing_run.attributes["affluent.batch_scores.row_count"] == 2_000
    assert landing_run.attributes["affluent.outcome"] == "scored"
    events = dict(run.events)
    assert "C_AGE" in events["quarantined"]["affluent.columns"]  # and the missing ones
    assert "column_in_dataframe" in events["quarantined"]["affluent.checks"]
    # The file's span says it was quarantined, as an error; the run fails after its files, so
    # no exception (whose message would quote the file's values) is recorded on the file's span.
    assert run.attributes["affluent.outcome"] == "quarantined" and run.status == 2  # ERROR
    assert "exception" not in events
    bad_trace = [s for s in receiver.spans if s.trace_id == run.trace_id]
    bad_sensor = next(s for s in bad_trace if s.name == "landing_sensor request")
    assert bad_sensor.parent_id == "" and run.parent_id == bad_sensor.span_id
    outcomes = {point_attributes(p).get("affluent.outcome") for n, _, p in
                receiver.metric_points if n == "affluent.files"}  # fmt: skip
    assert {"scored", "quarantined"} <= outcomes
    outcomes = {point_attributes(p).get("affluent.outcome") for n, _, p in
                receiver.metric_points if n == "affluent.files"}  # fmt: skip
    assert {"scored", "quarantined"} <= outcomes
    assert_no_customer_data(receiver, pd.concat([frame, pd.DataFrame({"C_AGE": ["forty"]})]))
    (tmp_path / "timeline.txt").write_text("\n".join(timeline(trace, post)) + "\n")
    print("\n".join(timeline(trace, post)))


def _whole(spans: list[Span], trace_id: str) -> list[Span] | None:
    """The trace once its run's span and its last stage (the candidates' reasons) are in."""
    trace = [s for s in spans if s.trace_id == trace_id]
    names = {s.name for s in trace}
    return trace if {"landing run", "stage reasons", "stage publish"} <= names else None


RUN_TRACES_PROBE = """
import dagster as dg
from affluent_assets.lib import telemetry

telemetry.setup("affluent-dagster-test")
from affluent_assets.defs.telemetry import run_traces

@dg.asset
def upstream():
    return 1

@dg.asset
def downstream(upstream):
    return upstream + 1

@dg.asset_check(asset=downstream)
def downstream_positive(downstream):
    return dg.AssetCheckResult(passed=downstream > 0)

instance = dg.DagsterInstance.ephemeral()
assert dg.materialize([upstream, downstream, downstream_positive], instance=instance).success
result = run_traces(dg.build_sensor_context(instance=instance, cursor="0"))
print(result.skip_reason)
"""


def test_a_finished_run_is_one_trace_with_a_span_per_asset_and_check(tmp_path):
    with otlp_receiver() as receiver:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        answer = subprocess.run(
            [sys.executable, "-c", RUN_TRACES_PROBE], env=env | otel_env(receiver, "runs"),
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )  # fmt: skip
        assert answer.returncode == 0, answer.stderr[-3000:]
        assert "1 run(s) traced" in answer.stdout
        check_step = "step downstream_downstream_positive"
        spans = receiver.wait_for(lambda r: named(r, check_step, 1) and r.spans, "the spans")
    [root] = [s for s in spans if s.name.startswith("run ")]
    by_name = {s.name: s for s in spans}
    for step in ("upstream", "downstream", "downstream_downstream_positive"):
        assert by_name[f"step {step}"].parent_id == root.span_id
        assert by_name[f"step {step}"].trace_id == root.trace_id
    check = by_name["check downstream/downstream_positive"]
    assert check.parent_id == by_name["step downstream_downstream_positive"].span_id
    assert check.attributes["dagster.check.passed"] is True
    assert root.start <= by_name["step upstream"].start <= by_name["step downstream"].start
