"""Benchmark: wall time of the whole main graph (ingest -> training -> scoring) on the default
66,083-row demo extract, with per-step times, into temporary stores.

    .venv/bin/python benchmarks/training_graph.py [--rows 66083] [--runs 1]

Writes benchmarks/results/training_graph.json. Run it on a quiet machine: it measures wall time.
"""

import argparse
import tempfile
import time
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource
from report import write_report  # benchmarks/report.py (scripts run from this folder)

from affluent_assets.definitions import MAIN_ASSETS
from affluent_assets.defs.resources import DuckDBTableIOManager, ExtractSource, MlflowModels


def one_run(rows: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "raw").mkdir()
        duckdb_resource = DuckDBResource(database=str(folder / "warehouse.duckdb"))
        resources = {
            "extract": ExtractSource(location=str(folder / "raw"), demo_rows=rows),
            "mlflow_models": MlflowModels(
                tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
                artifact_root=str(folder / "artifacts"),
            ),
            "duckdb": duckdb_resource,
            "io_manager": DuckDBTableIOManager(duckdb=duckdb_resource),
        }
        started = time.perf_counter()
        result = dg.materialize(MAIN_ASSETS, resources=resources)
        total = time.perf_counter() - started
        steps = {}
        for event in result.all_events:
            if event.event_type_value == "STEP_SUCCESS":
                steps[event.step_key] = round(event.event_specific_data.duration_ms / 1000, 2)
        return {"total_seconds": round(total, 1), "step_seconds": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=66083)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    runs = [one_run(args.rows) for _ in range(args.runs)]
    report = {
        "benchmark": "main graph, in process, default configuration",
        "rows": args.rows,
        "runs": runs,
        "median_total_seconds": sorted(r["total_seconds"] for r in runs)[len(runs) // 2],
    }
    write_report("training_graph", report)


if __name__ == "__main__":
    main()
