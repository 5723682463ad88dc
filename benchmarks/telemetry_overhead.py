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
import resource
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


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def batch_rate(source: Path, telemetry: dict[str, str]) -> tuple[float, float]:
    """Rows/s to queryable (wall, in the run) and CPU seconds of the whole `affluent score`
    process: on a machine shared with other work the CPU time is the steadier figure."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(_without_otel() | telemetry)
    try:
        with tempfile.TemporaryDirectory(prefix="affluent-otel-bench-") as work:
            cpu = _children_cpu()
            report, _, _ = score_in_subprocess(source, Path(work), 100_000)
            cpu = _children_cpu() - cpu
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return report["rows"] / report["seconds"], cpu


def online_rate(telemetry: dict[str, str], requests: int) -> tuple[float, float]:
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
            started, cpu = time.perf_counter(), _process_cpu(server.process.pid)
            for _ in range(requests):
                assert server.request("POST", "/invocations", body.encode(), headers)[0] == 200
            wall = time.perf_counter() - started
            # The server's CPU milliseconds per request, the steadier figure on a busy machine.
            return requests / wall, 1000 * (_process_cpu(server.process.pid) - cpu) / requests
        finally:
            stop(server.process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    source = demo_file(args.rows, 42)
    names = ("batch_rows_per_second", "batch_cpu_seconds", "online_rows_per_second",
             "online_cpu_ms_per_request")  # fmt: skip
    figures = {name: {"off": [], "on": []} for name in names}
    with otlp_receiver() as receiver:
        modes = {"off": {}, "on": otel_env(receiver, "affluent-bench")}
        for _ in range(args.repeats):
            for mode, env in modes.items():
                measured = (*batch_rate(source, env), *online_rate(env, args.requests))
                for name, value in zip(names, measured, strict=True):
                    figures[name][mode].append(value)
                print(mode, [round(v, 2) for v in measured], file=sys.stderr)
        received = len(receiver.spans)
    result = {"rows": args.rows, "repeats": args.repeats, "requests": args.requests,
              "spans_received": received, "load_average": os.getloadavg()}  # fmt: skip
    for name, runs in figures.items():
        off, on = statistics.median(runs["off"]), statistics.median(runs["on"])
        # Positive: telemetry costs that much (fewer rows/s, or more CPU).
        cost = (1 - on / off) if "rows_per_second" in name else (on / off - 1)
        result[name] = {"off": runs["off"], "on": runs["on"], "median_off": off,
                        "median_on": on, "cost_percent": round(100 * cost, 2)}  # fmt: skip
    write_report("telemetry_overhead", result)


if __name__ == "__main__":
    main()
