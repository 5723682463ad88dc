"""A burst of landing files under the real `dagster dev` (webserver + daemon), with an analyst
querying the warehouse meanwhile.

    make run                                           # once: registers the champion
    .venv/bin/python benchmarks/concurrent_landing.py  # 3-4 minutes on 2 cores

1. Starts `dagster dev` on a temporary DAGSTER_HOME (a copy of .dagster_home/dagster.yaml, so
   the real run limits), temporary landing, quarantine and lake folders and a copy of
   data/warehouse.duckdb (the drift check reads its training rows; its views are pointed at
   the temporary lake first, as the main graph's `landed_batch_views` does), scoring with the
   champion in the repo's MLflow store (data/mlflow.db).
2. Once the webserver answers and the daemon has ticked the landing sensor, writes 20 demo
   files of 2,000 rows (different seeds, no `C_seg`) to a staging folder and moves them all
   into the landing folder at once (os.replace, so each lands whole).
3. A separate process, like an analyst, polls every 0.5 s with a read-only DuckDB connection:
   rows per source file in `batch_scores` and the size of `latest_candidates`. It counts every
   failed query (with its messages) and records when each file's 2,000 rows became visible.
   Queries before the first landing run created the views ("does not exist") are counted apart.
4. When all files are queryable (or after the deadline) and the runs have finished, counts
   runs by status in the Dagster instance, checks that no row was lost or counted twice, and
   stops `dagster dev` by its process group.

Results: benchmarks/results/concurrent_landing.json. Exits non-zero when a target is missed
(every file scored, no failed run, the last file queryable within 30 s of the drop, no reader
error, exact counts); the results are written either way.
"""

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from report import write_report  # noqa: E402

from affluent_assets_tests.servers import DagsterStores, free_port, stop  # noqa: E402

DAGSTER = Path(sys.executable).with_name("dagster")
POLL_SECONDS = 0.5
TARGET_LAST_SECONDS = 30  # issue 18 (was 60 before it)
SENSOR_NAME = "landing_sensor"
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
# Measured on this machine before files that land together shared runs (20 files of 2,000
# rows, one run each, lean runs already in place): benchmarks/results of 2026-12-01.
BEFORE = {
    "seconds_first_queryable": 15.37,
    "seconds_last_queryable": 82.83,
    "reader_errors": 0,
    "reader_error_messages": [],
    "runs": "one per file (20)",
}


def prepare(work: Path) -> dict[str, str]:
    """Temporary folders, DAGSTER_HOME and warehouse copy; the environment for dagster dev."""
    stores = DagsterStores(
        work, f"sqlite:///{REPO / 'data' / 'mlflow.db'}", str(REPO / "data" / "mlartifacts")
    )
    (work / "staging").mkdir()
    shutil.copy(REPO / "data" / "warehouse.duckdb", stores.warehouse)
    # The copy's views point at the repo's lake. In a deployment the main graph's
    # `landed_batch_views` points them at the deployment's lake before files land; do the same
    # here, or the first landing run would open the warehouse for writing to move them, and the
    # analyst's queries at that moment would meet its lock.
    from dagster_duckdb import DuckDBResource

    from affluent_assets.defs.landing.views import ensure_views

    ensure_views(DuckDBResource(database=str(stores.warehouse)), str(stores.lake))
    prefixes = ("DAGSTER_HOME", "AFFLUENT_", "MLFLOW_")
    return {name: value for name, value in stores.env().items() if name.startswith(prefixes)}


def write_staged(staging: Path, files: int, rows: int) -> list[Path]:
    from affluent_assets.lib.demo_data import generate_customers
    from affluent_assets.lib.demo_files import write_extract

    return [
        write_extract(
            generate_customers(rows, seed=1000 + number).drop(columns="C_seg"),
            staging / f"etb_burst_{number:02d}.csv",
        )
        for number in range(files)
    ]


def start_dagster(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(DAGSTER), "dev", "-w", "workspace.yaml", "-p", str(port)],
            cwd=REPO,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return server, port


def wait_until_ready(server: subprocess.Popen, port: int, log: Path, seconds: float = 180):
    """Until the webserver answers and the daemon has evaluated the landing sensor once."""
    deadline = time.monotonic() + seconds
    answered = False
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"dagster dev exited:\n{log.read_text()[-3000:]}")
        if not answered:
            try:
                url = f"http://127.0.0.1:{port}/server_info"
                with urllib.request.urlopen(url, timeout=2) as response:
                    answered = response.status == 200
            except OSError:
                pass
        elif SENSOR_NAME in log.read_text(errors="replace"):
            return
        time.sleep(0.5)
    raise RuntimeError(f"dagster dev not ready within {seconds} s:\n{log.read_text()[-3000:]}")


def poll_once(warehouse: str) -> tuple[dict[str, int], int]:
    """What an analyst sees: rows per source file, and the number of ranked candidates."""
    with duckdb.connect(warehouse, read_only=True) as con:
        rows = con.execute("select source_file, count(*) from batch_scores group by 1").fetchall()
        candidates = con.execute("select count(*) from latest_candidates").fetchone()[0]
    return {str(name): int(count) for name, count in rows}, int(candidates)


def reader(warehouse: str, names: list[str], rows: int, all_seen, stop_event, results) -> None:
    """The analyst's process: polls until told to stop, then sends what it saw."""
    seen: dict[str, float] = {}
    errors: Counter[str] = Counter()
    polls = before_views = partial_views = candidates = 0
    views_seen = False
    while not stop_event.is_set():
        polls += 1
        try:
            counts, candidates = poll_once(warehouse)
            views_seen = True
        except Exception as error:  # any failed query counts
            message = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
            missing_view = isinstance(error, duckdb.CatalogException) and "not exist" in message
            if missing_view and not views_seen:
                before_views += 1
            else:
                errors[f"{type(error).__name__}: {message}"] += 1
            counts = {}
        now = time.monotonic()
        for name, count in counts.items():
            if count == rows:
                seen.setdefault(name, now)
            else:
                partial_views += 1  # a batch seen half-written or counted twice
        if len(seen) == len(names) and set(seen) == set(names):
            all_seen.set()
        time.sleep(POLL_SECONDS)
    results.put(
        {
            "seen_at": seen,
            "polls": polls,
            "errors": dict(errors),
            "polls_before_views": before_views,
            "partial_batch_views": partial_views,
            "latest_candidates": candidates,
        }
    )


def run_records(home: Path) -> list:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        return list(instance.get_run_records())


def wait_for_runs(home: Path, deadline: float) -> None:
    """Until every requested run has finished (candidates are published after the scores).
    Called once every file is queryable, so every file's run exists by then: files that land
    together share a run, so there are fewer runs than files."""
    while time.monotonic() < deadline:
        records = run_records(home)
        statuses = [record.dagster_run.status.value for record in records]
        if records and all(status in FINISHED for status in statuses):
            return
        time.sleep(1)


def peak_concurrency(records: list) -> int:
    """Most runs executing at the same moment, from their start and end times."""
    events = []
    for record in records:
        if record.start_time is not None:
            events += [(record.start_time, 1), (record.end_time or float("inf"), -1)]
    running = peak = 0
    for _, change in sorted(events, key=lambda event: (event[0], event[1])):
        running += change
        peak = max(peak, running)
    return peak


def run_timing(records: list) -> dict:
    """Median and longest wait in the queue (created -> started) and time running, seconds."""
    started = [r for r in records if r.start_time is not None and r.end_time is not None]
    waits = [r.start_time - r.create_timestamp.timestamp() for r in started]
    running = [r.end_time - r.start_time for r in started]
    if not started:
        return {}
    return {
        "seconds_queued_p50": round(statistics.median(waits), 1),
        "seconds_queued_max": round(max(waits), 1),
        "seconds_running_p50": round(statistics.median(running), 1),
        "seconds_running_max": round(max(running), 1),
        "seconds_first_start_to_last_start": round(
            max(r.start_time for r in started) - min(r.start_time for r in started), 1
        ),
    }


def failure_message(home: Path, run_id: str) -> str:
    import dagster as dg

    kinds = {dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for entry in instance.all_logs(run_id, of_type=kinds):
            event = entry.dagster_event
            error = event.step_failure_data.error if event.is_step_failure else None
            while error is not None and error.cause is not None:
                error = error.cause  # the user code's own error, not Dagster's wrapper
            text = error.message if error is not None else entry.message or ""
            if text:
                return text.strip().splitlines()[0][:300]
    return ""


def runs_summary(home: Path) -> dict:
    records = run_records(home)
    by_status = Counter(record.dagster_run.status.value for record in records)
    failed = [
        record.dagster_run
        for record in records
        if record.dagster_run.status.value in ("FAILURE", "CANCELED")
    ]
    return {
        "runs": len(records),
        "runs_by_status": dict(by_status),
        "failed_runs": len(failed),
        "failed_run_errors": [
            {
                "run_id": run.run_id,
                "file": run.tags.get("affluent/landing_file"),
                "status": run.status.value,
                "error": failure_message(home, run.run_id),
            }
            for run in failed[:5]
        ],
        "peak_concurrent_runs": peak_concurrency(records),
        "run_seconds": run_timing(records),
    }


def final_counts(warehouse: str, lake: Path, names: list[str], rows: int) -> dict:
    """Nothing lost, nothing counted twice: one batch, one run and `rows` rows per file."""
    with duckdb.connect(warehouse, read_only=True) as con:
        found = con.execute(
            "select source_file, count(*), count(distinct batch_key), count(distinct run_id),"
            " count(distinct customer_key) from batch_scores group by 1"
        ).fetchall()
    per_file = {str(name): (count, keys, runs, ids) for name, count, keys, runs, ids in found}
    batch_files = sorted(p.name for p in (lake / "batch_scores").glob("*.parquet"))
    batch_files = [name for name in batch_files if not name.startswith("_")]
    exact = set(per_file) == set(names) and all(
        value == (rows, 1, 1, rows) for value in per_file.values()
    )
    total = sum(value[0] for value in per_file.values())
    return {
        "total_rows": total,
        "rows_per_file_seen": sorted({value[0] for value in per_file.values()}),
        "lake_batch_files": len(batch_files),
        "rows_per_batch_ok": exact
        and total == rows * len(names)
        and len(batch_files) == len(names),
    }


def timings(seen_at: dict[str, float], t_drop: float, names: list[str]) -> dict:
    seconds = sorted(round(seen_at[name] - t_drop, 2) for name in names if name in seen_at)
    complete = len(seconds) == len(names)
    return {
        "files_queryable": len(seconds),
        "seconds_first_queryable": seconds[0] if seconds else None,
        "seconds_last_queryable": seconds[-1] if complete else None,
        "seconds_p50_per_file": round(statistics.median(seconds), 2) if complete else None,
        "seconds_per_file_sorted": seconds,
    }


def targets(report: dict) -> dict[str, bool]:
    last = report["seconds_last_queryable"]
    return {
        "all_scored": report["files_queryable"] == report["files"],
        "zero_failed_runs": report["failed_runs"] == 0,
        f"last_queryable_within_{TARGET_LAST_SECONDS}_s": last is not None
        and last <= TARGET_LAST_SECONDS,
        "zero_reader_errors": report["reader_errors"] == 0,
        "counts_exact": report["rows_per_batch_ok"],
    }


def max_concurrent_runs_setting() -> int:
    import yaml

    settings = yaml.safe_load((REPO / ".dagster_home" / "dagster.yaml").read_text())
    return int(settings["concurrency"]["runs"]["max_concurrent_runs"])


def measure(work: Path, env: dict[str, str], args) -> dict:
    """Start dagster dev, drop the burst, watch it land as an analyst; the raw observations."""
    staged = write_staged(work / "staging", args.files, args.rows)
    names = [path.name for path in staged]
    log = work / "dagster-dev.log"
    started = time.monotonic()
    server, port = start_dagster(env, log)
    context = mp.get_context("spawn")
    all_seen, stop_event, results = context.Event(), context.Event(), context.Queue()
    analyst = context.Process(
        target=reader,
        args=(env["AFFLUENT_WAREHOUSE"], names, args.rows, all_seen, stop_event, results),
    )
    try:
        wait_until_ready(server, port, log)
        t0 = time.monotonic()
        analyst.start()
        load_at_drop = os.getloadavg()[0]
        t_drop = time.monotonic()
        for path in staged:
            os.replace(path, Path(env["AFFLUENT_LANDING"]) / path.name)
        deadline = t_drop + args.deadline
        all_seen.wait(timeout=max(0.0, deadline - time.monotonic()))
        wait_for_runs(Path(env["DAGSTER_HOME"]), deadline)
        stop_event.set()
        seen = results.get(timeout=60)
        analyst.join(timeout=30)
        load_at_end = os.getloadavg()[0]
    finally:
        stop_event.set()
        if analyst.is_alive():
            analyst.terminate()
        stop(server)
    return {
        "names": names,
        "seconds_to_ready": round(t0 - started, 1),
        "t_drop": t_drop,
        "reader": seen,
        # Other work on the machine slows every run process: the 1-minute load average.
        "load_average": {"at_drop": round(load_at_drop, 2), "at_end": round(load_at_end, 2)},
    }


def build_report(work: Path, env: dict[str, str], observed: dict, args) -> dict:
    names, seen = observed["names"], observed["reader"]
    errors = Counter(seen["errors"])
    report = {
        "measured": "20 landing files dropped at once under dagster dev -> each file's rows "
        "readable in batch_scores by a read-only analyst polling every 0.5 s",
        "files": args.files,
        "rows_per_file": args.rows,
        **timings(seen["seen_at"], observed["t_drop"], names),
        "reader_polls": seen["polls"],
        "reader_errors": sum(errors.values()),
        "reader_error_messages": [f"{count}x {text}" for text, count in errors.most_common(5)],
        "reader_polls_before_views_existed": seen["polls_before_views"],
        "reader_partial_batch_views": seen["partial_batch_views"],
        "latest_candidates_at_end": seen["latest_candidates"],
        **runs_summary(Path(env["DAGSTER_HOME"])),
        **final_counts(env["AFFLUENT_WAREHOUSE"], Path(env["AFFLUENT_LAKE"]), names, args.rows),
        "max_concurrent_runs": max_concurrent_runs_setting(),
        "seconds_dagster_dev_ready": observed["seconds_to_ready"],
        "load_average_1min": observed["load_average"],
        "deadline_seconds": args.deadline,
        "before": BEFORE,
    }
    report["targets"] = targets(report)
    return report


def print_summary(report: dict) -> None:
    def seconds(value) -> str:
        return "-" if value is None else f"{value:.1f} s"

    print(
        f"\n{report['files_queryable']}/{report['files']} files queryable: first "
        f"{seconds(report['seconds_first_queryable'])}, p50 "
        f"{seconds(report['seconds_p50_per_file'])}, last "
        f"{seconds(report['seconds_last_queryable'])} after the drop "
        f"(before: {BEFORE['seconds_first_queryable']} s / {BEFORE['seconds_last_queryable']} s)"
    )
    print(
        f"runs {report['runs_by_status']}, peak {report['peak_concurrent_runs']} at once "
        f"(limit {report['max_concurrent_runs']}); reader: {report['reader_polls']} polls, "
        f"{report['reader_errors']} errors (before: {BEFORE['reader_errors']}); "
        f"counts exact: {report['rows_per_batch_ok']}"
    )
    timing = report["run_seconds"]
    if timing:
        print(
            f"runs queued p50 {timing['seconds_queued_p50']} s (max {timing['seconds_queued_max']}"
            f" s), running p50 {timing['seconds_running_p50']} s"
        )
    for message in report["reader_error_messages"]:
        print(f"  reader error: {message}")
    for failure in report["failed_run_errors"]:
        print(f"  failed run {failure['run_id']} ({failure['file']}): {failure['error']}")
    missed = [name for name, ok in report["targets"].items() if not ok]
    print("targets: all met" if not missed else f"targets missed: {', '.join(missed)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--rows", type=int, default=2_000)
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds after the drop")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="affluent-burst-"))
    env = prepare(work)
    observed = measure(work, env, args)
    report = build_report(work, env, observed, args)
    write_report("concurrent_landing", report)
    print_summary(report)
    missed = not all(report["targets"].values())
    if args.keep or missed:
        print(f"dagster dev log and stores kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
