"""Online scoring: `affluent serve` against `mlflow models serve` on the same champion, in one run.

    make run                                    # a champion in data/ (or point MLFLOW_TRACKING_URI)
    .venv/bin/python benchmarks/online_scoring.py [--requests 400] [--swap]

Both servers start on free local ports, each in its own process group, and answer the same
customers: `affluent serve` gets contract rows (it checks them against the contract and returns
probability, flag, expected precision and three reasons), `mlflow models serve` gets the
model's feature columns (it checks nothing and returns probabilities only). A closed-loop
client sends a bounded number of 1-row and 100-row requests at concurrency 1 and 8 to each and
records p50 and p99 latency and rows per second; then the scores of the same rows must agree
between the two servers and with the batch path (lib/scorer.score_rows) within 1e-9. With
`--swap`, a new version is registered and promoted while requests are in flight, and the time
until the service answers with it and the failed requests are counted.
Results: benchmarks/results/online_scoring.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from affluent_assets import settings
from affluent_assets.lib import registry
from affluent_assets.lib.champion import load_champion
from affluent_assets.lib.demo_data import generate_customers
from affluent_assets.lib.features import MODEL_FEATURES, build_features, clean_customers
from affluent_assets.lib.schemas import raw_extract_schema
from affluent_assets.lib.scorer import score_rows
from affluent_assets.lib.validation import validate_frame

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import write_report  # noqa: E402

MODEL = "affluent_classifier"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_ready(port: int, path: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            if call(port, "GET", path)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"server never ready:\n{log.read_text()[-3000:]}")


def call(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def load(port: int, body: bytes, rows: int, requests: int, concurrency: int) -> dict:
    """A closed loop: `concurrency` clients, each sending its next request when the last one
    is answered, `requests` in all."""
    latencies: list[float] = []
    failures = [0]
    stages: dict[str, list[float]] = {}

    def client(count: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(count):
            started = time.perf_counter()
            connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            latencies.append(time.perf_counter() - started)
            for part in filter(None, (response.getheader("server-timing") or "").split(",")):
                name, _, duration = part.strip().partition(";dur=")
                stages.setdefault(name, []).append(float(duration))
            failures[0] += response.status != 200
        connection.close()

    share = [requests // concurrency] * concurrency
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(client, share))
    wall = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000
    figures = {
        "requests": len(ms),
        "failed": failures[0],
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "rows_per_second": round(rows * len(ms) / wall),
    }
    if stages:  # where the server says the time went (Server-Timing)
        figures["server_stages_mean_ms"] = {
            k: round(float(np.mean(v)), 3) for k, v in stages.items()
        }
    return figures


def payload(frame: pd.DataFrame) -> bytes:
    return json.dumps(
        {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}
    ).encode()


def equality(ours: int, theirs: int, tracking_uri: str, rows: pd.DataFrame, features) -> dict:
    _, body = call(ours, "POST", "/invocations", payload(rows))
    answered = pd.DataFrame(json.loads(body)["predictions"])
    _, body = call(theirs, "POST", "/invocations", payload(features))
    mlflow_p = np.asarray(json.loads(body)["predictions"], dtype="float64")
    mlflow_p = mlflow_p[:, 1] if mlflow_p.ndim == 2 else mlflow_p
    scorer = load_champion(tracking_uri, MODEL)
    valid = validate_frame(raw_extract_schema(require_label=False), rows.copy(), "request")
    batch = score_rows(scorer, valid, "request").scores
    ours_p = answered["affluent_probability"].to_numpy(dtype="float64")
    return {
        "rows": len(rows),
        "max_abs_diff_vs_mlflow": float(np.abs(ours_p - mlflow_p).max()),
        "max_abs_diff_vs_batch_path": float(np.abs(ours_p - batch["affluent_probability"]).max()),
        "reasons_equal_to_batch_path": bool(
            (answered["reason_1"].fillna("") == batch["reason_1"].fillna("")).all()
        ),
    }


def copy_champion(source_uri: str, work: Path) -> str:
    """The champion of `source_uri` registered again in a store of its own (with its holdout
    curve), promoted there: both servers serve it, the swap promotes in it, data/ is untouched.
    Registering logs it with the platform's own code, so `mlflow models serve` answers
    probabilities (pyfunc predict_proba) whatever the source version was logged with."""
    champion = registry.describe_version(source_uri, MODEL, "champion")
    if champion is None:
        raise SystemExit(f"no champion in {source_uri}: run `make run` first")
    tracking_uri = f"sqlite:///{work / 'mlflow.db'}"
    registered = register(tracking_uri, work, registry.load_model(source_uri, champion), champion)
    curve = registry.load_holdout_curve(source_uri, champion)
    if curve is not None:
        registry.log_holdout_curve(tracking_uri, registered.run_id, curve)
    registry.set_alias(tracking_uri, MODEL, registered.version)
    return tracking_uri


def register(tracking_uri: str, work: Path, model, like) -> registry.RegisteredModel:
    sample = build_features(clean_customers(generate_customers(50, seed=1), "x"))
    return registry.log_and_register(
        tracking_uri=tracking_uri, experiment="online_scoring_benchmark",
        artifact_root=str(work / "artifacts"), model_name=MODEL, model=model,
        signature_rows=sample[MODEL_FEATURES], params={}, metrics={}, threshold=like.threshold,
        decile_edges=like.decile_edges, tags={"source": "benchmarks/online_scoring.py"},
        run_name="online_scoring",
    )  # fmt: skip


def swap(port: int, tracking_uri: str, work: Path, body: bytes) -> dict:
    """Promote a new version (the champion's model registered again) under load."""
    current = registry.describe_version(tracking_uri, MODEL, "champion")
    statuses, seen = [], []
    done = threading.Event()

    def sender():
        while not done.is_set():
            status, answer = call(port, "POST", "/invocations", body)
            statuses.append(status)
            if status == 200:
                versions = {p["model_version"] for p in json.loads(answer)["predictions"]}
                seen.append((time.monotonic(), versions))

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    new = register(tracking_uri, work, registry.load_model(tracking_uri, current), current)
    registry.set_alias(tracking_uri, MODEL, new.version)
    promoted = time.monotonic()
    while time.monotonic() < promoted + 30 and not any(
        t > promoted and v == {new.version} for t, v in seen
    ):
        time.sleep(0.05)
    time.sleep(1)
    done.set()
    for thread in threads:
        thread.join()
    first = min((t for t, v in seen if v == {new.version}), default=None)
    return {
        "from_version": current.version,
        "to_version": new.version,
        "seconds_to_new_version": None if first is None else round(first - promoted, 2),
        "requests": len(statuses),
        "failed_requests": sum(s != 200 for s in statuses),
        "answers_mixing_versions": sum(len(v) > 1 for _, v in seen),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per measurement")
    parser.add_argument("--swap", action="store_true", help="also promote a version under load")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="online-scoring-"))
    tracking_uri = copy_champion(settings.mlflow_tracking_uri(), work)
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "DAGSTER_HOME": str(work),
           "PATH": f"{BIN}:{os.environ['PATH']}", "AFFLUENT_LANDING": str(work / "landing"),
           "AFFLUENT_LAKE": str(work / "lake"), "AFFLUENT_QUARANTINE": str(work / "q")}  # fmt: skip
    ours_port, theirs_port = free_port(), free_port()
    ours = start([str(BIN / "affluent"), "serve", "--port", str(ours_port)], env, work / "ours.log")
    theirs = start([str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{MODEL}@champion",
                    "--env-manager", "local", "--host", "127.0.0.1", "-p", str(theirs_port)],
                   env, work / "mlflow.log")  # fmt: skip
    try:
        wait_ready(ours_port, "/v2/health/ready", ours, work / "ours.log")
        wait_ready(theirs_port, "/ping", theirs, work / "mlflow.log")
        customers = generate_customers(200, seed=3).drop(columns=["C_seg"])
        features = build_features(clean_customers(customers, "x"))[MODEL_FEATURES]
        results = {"equality": equality(ours_port, theirs_port, tracking_uri, customers, features)}
        for rows, concurrency in ((1, 1), (1, 8), (100, 1), (100, 8)):
            ours_body, theirs_body = payload(customers.head(rows)), payload(features.head(rows))
            for port, body in ((ours_port, ours_body), (theirs_port, theirs_body)):
                load(port, body, rows, 40, concurrency)  # warm-up
            key = f"{rows}_rows_concurrency_{concurrency}"
            results[key] = {
                "affluent_serve": load(ours_port, ours_body, rows, args.requests, concurrency),
                "mlflow_models_serve": load(theirs_port, theirs_body, rows, args.requests,
                                            concurrency),
            }  # fmt: skip
            both = results[key]
            both["p50_ratio"] = round(both["affluent_serve"]["p50_ms"]
                                      / both["mlflow_models_serve"]["p50_ms"], 3)  # fmt: skip
            both["rows_per_second_ratio"] = round(
                both["affluent_serve"]["rows_per_second"]
                / both["mlflow_models_serve"]["rows_per_second"], 3)  # fmt: skip
        if args.swap:
            results["swap"] = swap(ours_port, tracking_uri, work, payload(customers.head(20)))
    finally:
        stop(ours)
        stop(theirs)
        shutil.rmtree(work, ignore_errors=True)
    write_report("online_scoring", {"requests_per_measurement": args.requests, **results})


if __name__ == "__main__":
    main()
