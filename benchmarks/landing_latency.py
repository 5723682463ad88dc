"""Landing-to-queryable latency under `dagster dev`: a 66,083-row file is moved into the landing
folder (atomically, as a finished copy would land) and the clock stops when all its rows are in
`batch_scores` and readable from another process. p50 over five files (a warm-up file first).

    .venv/bin/python benchmarks/landing_latency.py            # csv, 5 files, 66,083 rows
    .venv/bin/python benchmarks/landing_latency.py --format xlsx --files 5

Everything lives in a temporary folder (DAGSTER_HOME, DuckDB, MLflow, landing); the model is
trained first by materializing the main graph on a small demo extract, so the file is scored by
a real registered champion. Results go to benchmarks/results/landing_latency.json.
"""

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "landing_latency.json"
DAGSTER = Path(sys.executable).with_name("dagster")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stores_env(root: Path) -> dict[str, str]:
    data = root / "data"
    return {
        "DAGSTER_HOME": str(root / "dagster_home"),
        "AFFLUENT_DATA_DIR": str(data),
        "AFFLUENT_LANDING": str(data / "landing"),
        "AFFLUENT_QUARANTINE": str(data / "quarantine"),
        "AFFLUENT_WAREHOUSE": str(data / "warehouse.duckdb"),
        "AFFLUENT_EXTRACT": str(data / "raw"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{data / 'mlflow.db'}",
        "AFFLUENT_MLFLOW_ARTIFACTS": str(data / "mlartifacts"),
    }


def train_champion(env: dict[str, str], rows: int) -> None:
    """Materialize the main graph on `rows` demo customers into the temporary stores."""
    code = (
        "import dagster as dg\n"
        "from affluent_assets.definitions import MAIN_ASSETS\n"
        "from affluent_assets.defs.resources import default_resources, ExtractSource\n"
        f"resources = {{**default_resources(), 'extract': ExtractSource(demo_rows={rows})}}\n"
        "assert dg.materialize(MAIN_ASSETS, resources=resources).success\n"
    )
    subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, check=True, cwd=REPO)


def scored_rows(warehouse: Path, batch_key: str) -> int:
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            found = con.execute(
                "select count(*) from batch_scores where batch_key = ?", [batch_key]
            ).fetchall()
            return int(found[0][0])
    except (duckdb.Error, OSError):
        return 0  # not created yet, or a writer holds the lock right now


def land_and_wait(staged: Path, landing: Path, warehouse: Path, rows: int, timeout: float):
    target = landing / staged.name
    start, landed_at = time.monotonic(), time.time()
    os.replace(staged, target)
    while time.monotonic() - start < timeout:
        if scored_rows(warehouse, staged.name) == rows:
            return time.monotonic() - start, landed_at
        time.sleep(0.1)
    raise TimeoutError(f"{staged.name} not scored within {timeout:.0f} s")


# Where a file's seconds went, from what Dagster stored: the run's creation by the sensor tick
# (which may have started before the file landed: a tick with nothing ready watches the folder),
# then the run's first event of each type (the first materialization is the scores': the clock
# stops when they are readable).
PHASES = (
    ("sensor: landed -> run requested", "requested"),
    ("start: requested -> run started (queue, launch, run worker)", "RUN_START"),
    ("run start: run started -> step started", "STEP_START"),
    ("scoring: step started -> scores published", "ASSET_MATERIALIZATION"),
)


def run_phases(instance, file_name: str, landed_at: float, seconds: float) -> dict[str, float]:
    """The file's latency split by its run's creation and stored events (wall clock)."""
    import dagster as dg

    from affluent_assets.names import LANDING_FILE_TAG

    runs = instance.get_runs(dg.RunsFilter(tags={LANDING_FILE_TAG: file_name}), limit=1)
    if not runs:
        return {}
    run = runs[0]
    marks = {"requested": instance.get_run_record_by_id(run.run_id).create_timestamp.timestamp()}
    for entry in instance.all_logs(run.run_id):
        if entry.dagster_event is not None:
            kind = dg.DagsterEventType(entry.dagster_event.event_type_value).name
            marks.setdefault(kind, entry.timestamp)
    phases, previous = {}, landed_at
    for name, mark in PHASES:
        if mark in marks:
            phases[name] = round(marks[mark] - previous, 2)
            previous = marks[mark]
    phases["seen: published -> seen by the benchmark's reader"] = round(
        landed_at + seconds - previous, 2
    )
    return phases


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5, help="measured files (after a warm-up)")
    parser.add_argument("--rows", type=int, default=66_083, help="rows per landing file")
    parser.add_argument("--format", choices=["csv", "parquet", "xlsx"], default="csv")
    parser.add_argument("--train-rows", type=int, default=5_000, help="demo rows to train on")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per file")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from affluent_assets.lib.demo_data import generate_customers
    from affluent_assets.lib.demo_files import write_extract

    root = Path(tempfile.mkdtemp(prefix="landing-bench-"))
    env = stores_env(root)
    Path(env["DAGSTER_HOME"]).mkdir(parents=True)
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", Path(env["DAGSTER_HOME"]))
    landing, warehouse = Path(env["AFFLUENT_LANDING"]), Path(env["AFFLUENT_WAREHOUSE"])
    landing.mkdir(parents=True)
    staging = root / "staging"
    print(f"working in {root}; training the champion on {args.train_rows} demo rows")
    t = time.monotonic()
    train_champion(env, args.train_rows)
    print(f"trained in {time.monotonic() - t:.1f} s; writing {args.files + 1} landing files")
    staged = [
        write_extract(
            generate_customers(args.rows, seed=100 + i).drop(columns="C_seg"),
            staging / f"etb_bench_{i}.{args.format}",
        )
        for i in range(args.files + 1)
    ]
    log = root / "dagster-dev.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(DAGSTER), "dev", "-w", "workspace.yaml", "-p", str(free_port())],
            cwd=REPO,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        time.sleep(10)  # let the daemon and code server start; not part of any measurement
        warmup, _ = land_and_wait(staged[0], landing, warehouse, args.rows, args.timeout)
        print(f"warm-up file: {warmup:.1f} s")
        latencies, landings = [], []
        for path in staged[1:]:
            time.sleep(2)
            seconds, landed_at = land_and_wait(path, landing, warehouse, args.rows, args.timeout)
            latencies.append(round(seconds, 2))
            landings.append((path.name, landed_at, seconds))
            print(f"{path.name}: {seconds:.1f} s")
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)

    import dagster

    from affluent_assets import settings
    from affluent_assets.defs.landing.sensors import TICK_SECONDS

    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    with dagster.DagsterInstance.get() as instance:
        phases = [run_phases(instance, *landed) for landed in landings]
    medians = {
        name: round(statistics.median(p[name] for p in phases if name in p), 2)
        for name in dict.fromkeys(n for p in phases for n in p)
    }

    result = {
        "measured": "landing file moved into the folder -> all its rows readable in batch_scores",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows_per_file": args.rows,
        "format": args.format,
        "files": len(latencies),
        "latencies_seconds": latencies,
        "p50_seconds": round(statistics.median(latencies), 2),
        "max_seconds": max(latencies),
        "warmup_seconds": round(warmup, 2),
        "phases_p50_seconds": medians,
        "phases_seconds": phases,
        "sensor_interval_seconds": TICK_SECONDS,
        "sensor_watch_seconds": settings.landing_watch_seconds(),
        "dagster": dagster.__version__,
        "machine": machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
