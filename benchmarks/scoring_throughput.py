"""Scoring throughput of one large landing file, end to end, against the model's own speed.

    .venv/bin/python benchmarks/scoring_throughput.py --rows 1000000
    .venv/bin/python benchmarks/scoring_throughput.py --rows 10000000

1. Writes an N-row contract-true CSV (demo generator, chunk by chunk; cached under the system's
   temporary folder, since 10M rows take a few minutes to make). Not part of the figures.
2. Scores it with `affluent score` in a separate process, through the landing assets and
   checks, with the champion that `make run` registered; landing folder, lake, warehouse copy
   and Dagster instance are temporary. The peak memory is that process's maximum RSS.
3. In this process, times the champion booster's own `inplace_predict` on the same rows
   (prepared matrices chunk by chunk; only the predict calls are timed): the raw rate. The
   scorer predicts many rows with compiled tables of the same trees (lib/tree_predict.py):
   their rate on the same matrices is reported beside it, their answers checked equal to the
   booster's bit for bit.

Results: benchmarks/results/scoring_throughput_<rows>.json.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from report import write_report  # noqa: E402

from affluent_assets.lib.extract_io import DEFAULT_CHUNK_ROWS  # noqa: E402

AFFLUENT = Path(sys.executable).with_name("affluent")
# Measured by the issue on this machine before streaming (the whole-frame landing functions).
BEFORE = {
    "1000000": {"rows_per_second": 95_000, "raw_rows_per_second": 1_430_000, "peak_mib": 2_900},
    "3000000": {"rows_per_second": 94_000, "raw_rows_per_second": 1_930_000, "peak_mib": 8_100},
}


def demo_file(rows: int, seed: int) -> Path:
    from affluent_assets.lib.demo_data import write_demo_csv

    path = Path(tempfile.gettempdir()) / "affluent-bench" / f"etb_{rows}_{seed}.csv"
    if not path.exists():
        started = time.perf_counter()
        partial = path.with_suffix(".partial")
        write_demo_csv(partial, rows, seed=seed)
        partial.rename(path)
        print(f"wrote {path} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path


def score_in_subprocess(source: Path, work: Path, chunk_rows: int) -> tuple[dict, float, float]:
    """The command's report, its wall time and its peak RSS in MiB."""
    landing = work / "landing"
    landing.mkdir()
    target = landing / source.name
    os.link(source, target) if source.stat().st_dev == landing.stat().st_dev else shutil.copy(
        source, target
    )
    warehouse = work / "warehouse.duckdb"
    # A copy of the warehouse: the drift check reads the training rows; views go into the copy.
    shutil.copy(REPO / "data" / "warehouse.duckdb", warehouse)
    report = work / "report.json"
    env = {
        **os.environ,
        "AFFLUENT_LANDING": str(landing),
        "AFFLUENT_QUARANTINE": str(work / "quarantine"),
        "AFFLUENT_LAKE": str(work / "lake"),
        "AFFLUENT_WAREHOUSE": str(warehouse),
        "DAGSTER_HOME": str(work / "dagster_home"),
    }
    (work / "dagster_home").mkdir()
    command = [str(AFFLUENT), "score", str(target), "--no-progress", "--top", "0"]
    command += ["--chunk-rows", str(chunk_rows), "--report-json", str(report)]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stdout, done.stderr, sep="\n", file=sys.stderr)
        raise SystemExit(f"affluent score failed with exit code {done.returncode}")
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return json.loads(report.read_text()), wall, peak_mib


def raw_predict_rate(path: Path, chunk_rows: int) -> tuple[float, float, int]:
    """Rows per second of the champion booster's `inplace_predict` alone, on the same rows (the
    reference), and of the compiled tables the scorer predicts many rows with
    (lib/tree_predict.py), on the same matrices, checked equal bit for bit."""
    from affluent_assets.defs.resources import MlflowModels
    from affluent_assets.lib.extract_io import open_extract
    from affluent_assets.lib.features import build_features, clean_customers
    from affluent_assets.lib.prepared import prepared_matrix
    from affluent_assets.lib.registry import CHAMPION_ALIAS
    from affluent_assets.lib.schemas import raw_extract_schema
    from affluent_assets.lib.tree_predict import predictor
    from affluent_assets.lib.validation import validate_frame

    models = MlflowModels()
    model = models.load(models.describe(CHAMPION_ALIAS))
    booster = model.pipeline.named_steps["model"].get_booster()
    schema = raw_extract_schema(require_label=False)
    compiled = predictor(booster)
    seconds, compiled_seconds, rows = 0.0, 0.0, 0
    with open_extract(path) as extract:
        for chunk in extract.chunks(chunk_rows):
            clean = clean_customers(validate_frame(schema, chunk, path.name), path.name)
            matrix = prepared_matrix(model.pipeline, build_features(clean))
            started = time.perf_counter()
            expected = booster.inplace_predict(matrix)
            seconds += time.perf_counter() - started
            started = time.perf_counter()
            got = compiled.probability(matrix)
            compiled_seconds += time.perf_counter() - started
            assert np.array_equal(got, expected), "compiled tables differ from the booster"
            rows += len(matrix)
    return rows / seconds, rows / compiled_seconds, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    source = demo_file(args.rows, args.seed)
    with tempfile.TemporaryDirectory(prefix="affluent-throughput-") as folder:
        report, wall, peak_mib = score_in_subprocess(source, Path(folder), args.chunk_rows)
    raw_rate, compiled_rate, raw_rows = raw_predict_rate(source, args.chunk_rows)
    assert raw_rows == report["rows"] == args.rows, (raw_rows, report["rows"], args.rows)
    scored = report["seconds_scores_queryable"]
    listed = report["seconds_candidates_queryable"]
    rate = args.rows / scored
    write_report(
        f"scoring_throughput_{args.rows}",
        {
            "rows": args.rows,
            "file_mib": round(source.stat().st_size / 2**20, 1),
            "chunk_rows": args.chunk_rows,
            "model_version": report["model_version"],
            "end_to_end_rows_per_second": round(rate),
            "raw_inplace_predict_rows_per_second": round(raw_rate),
            "ratio_to_raw": round(rate / raw_rate, 3),
            # The scorer predicts many rows with compiled tables, faster than the reference:
            # their own rate, and the ratio to it, say how much of the rest is overhead.
            "compiled_tables_rows_per_second": round(compiled_rate),
            "ratio_to_compiled_tables": round(rate / compiled_rate, 3),
            "peak_memory_mib": round(peak_mib),
            "seconds_scores_queryable": scored,
            "candidates": report["candidates"],
            "seconds_candidates_with_reasons_queryable": listed,
            "reasons_per_second": round(report["candidates"] / max(1e-9, listed - scored)),
            "seconds_command_wall": round(wall, 1),
            "stage_seconds": {name: round(value, 2) for name, value in report["stages"].items()},
            "before_streaming": BEFORE,
        },
    )


if __name__ == "__main__":
    main()
