"""What OpenTelemetry costs: the same work with telemetry on (exporting to a real OTLP/HTTP
receiver on loopback) and off, alternated so that the machine's load falls on both alike.

    .venv/bin/python benchmarks/telemetry_overhead.py --rows 1000000 --repeats 3

1. Batch: `affluent score` on the N-row CSV of benchmarks/scoring_throughput.py (same helper,
   same champion from `make run`), end-to-end rows/s.
2. Online: `affluent serve` with the same champion, closed-loop 1-row `/invocations` requests
   at concurrency 1, rows/s.

Targets (issue 17): at most 2% slower batch, at most 5% fewer online rows/s.
Results: benchmarks/results/telemetry_overhead.json.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO))

from report import write_report  # noqa: E402
from scoring_throughput import demo_file, score_in_subprocess  # noqa: E402

from affluent_assets_tests.otlp import otel_env, otlp_receiver  # noqa: E402
from affluent_assets_tests.servers import AffluentServe, stop  # noqa: E402


def _without_otel() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}


def batch_rate(source: Path, telemetry: dict[str, str]) -> float:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(_without_otel() | telemetry)
    try:
        with tempfile.TemporaryDirectory(prefix="affluent-otel-bench-") as work:
            report, _, _ = score_in_subprocess(source, Path(work), 100_000)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return report["rows"] / report["seconds"]  # in the run, to queryable (no interpreter start)


def online_rate(telemetry: dict[str, str], requests: int) -> float:
    from affluent_assets.lib.demo_data import generate_customers

    row = generate_customers(1, seed=3).drop(columns="C_seg")
    body = json.dumps({"dataframe_split": json.loads(row.to_json(orient="split", index=False))})
    with tempfile.TemporaryDirectory(prefix="affluent-otel-serve-") as work:
        (Path(work) / "home").mkdir()
        env = _without_otel() | telemetry | {
            "AFFLUENT_LANDING": f"{work}/landing", "DAGSTER_HOME": f"{work}/home",
            "MLFLOW_TRACKING_URI": os.environ.get(
                "MLFLOW_TRACKING_URI", f"sqlite:///{REPO / 'data' / 'mlflow.db'}"),
        }  # fmt: skip
        server = AffluentServe(env).wait()
        try:
            while server.request("GET", "/v2/health/ready")[0] != 200:
                time.sleep(0.3)
            headers = {"Content-Type": "application/json"}
            for _ in range(50):  # warm: numba, caches
                server.request("POST", "/invocations", body.encode(), headers)
            started = time.perf_counter()
            for _ in range(requests):
                assert server.request("POST", "/invocations", body.encode(), headers)[0] == 200
            return requests / (time.perf_counter() - started)
        finally:
            stop(server.process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    source = demo_file(args.rows, 42)
    figures: dict[str, dict[str, list[float]]] = {
        "batch_rows_per_second": {"off": [], "on": []},
        "online_rows_per_second": {"off": [], "on": []},
    }
    with otlp_receiver() as receiver:
        modes = {"off": {}, "on": otel_env(receiver, "affluent-bench")}
        for _ in range(args.repeats):
            for mode, env in modes.items():
                figures["batch_rows_per_second"][mode].append(batch_rate(source, env))
                figures["online_rows_per_second"][mode].append(online_rate(env, args.requests))
                print(mode, {k: round(v[mode][-1]) for k, v in figures.items()}, file=sys.stderr)
        received = len(receiver.spans)
    result = {"rows": args.rows, "repeats": args.repeats, "requests": args.requests,
              "spans_received": received, "load_average": os.getloadavg()}  # fmt: skip
    for name, runs in figures.items():
        off, on = statistics.median(runs["off"]), statistics.median(runs["on"])
        slower = round(100 * (1 - on / off), 2)
        result[name] = {"off": runs["off"], "on": runs["on"], "median_off": off,
                        "median_on": on, "slower_percent": slower}  # fmt: skip
    write_report("telemetry_overhead", result)


if __name__ == "__main__":
    main()
