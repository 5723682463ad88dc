"""What a landing run's process pays before it scores: loading the code location and the champion.

    make run                                  # a champion in data/ (for the champion figures)
    .venv/bin/python benchmarks/run_imports.py [--repeats 5]

Each figure is the median of `--repeats` fresh processes, timed from outside (wall) and by the
process itself (CPU), with `import dagster` alone measured the same way in the same run as the
reference: Dagster's own import stays on every run's path. Then the champion as a landing run
loads it: by number from the local cache (what a run whose sensor named the version does) and
from the registry (a run without the tag, or the first for a version). Whether MLflow,
matplotlib and scikit-learn were imported is read from `sys.modules` in each process.
Results: benchmarks/results/run_imports.json.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from report import write_report  # noqa: E402

WATCHED = ("mlflow", "matplotlib", "sklearn", "xgboost", "numba")

PROBE = """
import json, resource, sys, time
started = time.perf_counter()
{body}
seconds = time.perf_counter() - started
cpu = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"seconds": seconds, "cpu": cpu.ru_utime + cpu.ru_stime,
                   "loaded": [m for m in {watched!r} if m in sys.modules]}}))
"""

CHAMPION = """
from affluent_assets import settings
from affluent_assets.lib.champion import load_champion
load_champion(settings.mlflow_tracking_uri(), "affluent_classifier", {alias!r},
              cache_dir={cache!r})
"""


def measure(body: str, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        began = time.perf_counter()
        program = PROBE.format(body=body, watched=WATCHED)
        done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                              check=True, cwd=REPO)  # fmt: skip
        runs.append({**json.loads(done.stdout.strip().splitlines()[-1]),
                     "wall": time.perf_counter() - began})  # fmt: skip
    return {
        "wall_seconds": round(statistics.median(r["wall"] for r in runs), 3),
        "cpu_seconds": round(statistics.median(r["cpu"] for r in runs), 3),
        "inside_seconds": round(statistics.median(r["seconds"] for r in runs), 3),
        "imported": runs[-1]["loaded"],
    }


def champion_version() -> str | None:
    from affluent_assets import settings
    from affluent_assets.lib.champion import ChampionUnavailable, champion_version

    try:
        return champion_version(settings.mlflow_tracking_uri(), "affluent_classifier").version
    except ChampionUnavailable:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    report = {"repeats": args.repeats}
    report["dagster"] = measure("import dagster", args.repeats)
    report["code_location"] = measure("import affluent_assets.definitions", args.repeats)
    report["code_location_over_dagster"] = round(
        report["code_location"]["cpu_seconds"] / report["dagster"]["cpu_seconds"], 2
    )
    version = champion_version()
    if version is None:
        print("no champion in data/: run `make run` for the champion figures", file=sys.stderr)
    else:
        report["champion_version"] = version
        registry = CHAMPION.format(alias=version, cache=None)
        report["champion_from_registry"] = measure(registry, args.repeats)
        with tempfile.TemporaryDirectory(prefix="champion-cache-") as cache:
            cached = CHAMPION.format(alias=version, cache=cache)
            measure(cached, 1)  # the first run for a version fills the cache
            report["champion_from_cache"] = measure(cached, args.repeats)
    write_report("run_imports", report)


if __name__ == "__main__":
    main()
