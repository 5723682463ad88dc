"""From the end of an upload to the candidates on the page, against the landing sensor's own
latency for the same kind of file, in the same run.

    make run                                        # once: registers the champion
    .venv/bin/python benchmarks/upload_latency.py   # about 3 minutes on 2 cores

Starts `dagster dev` (temporary home, landing, lake, a copy of the warehouse; the champion of
`make run`) and `affluent serve` over the same folders. Then, alternately, `--rounds` times:
- sensor: a 50,000-row CSV is moved into the landing folder; the time until its ranked
  candidate list is in the lake;
- upload: another 50,000-row CSV is POSTed to /api/batches; the time from the 202 until
  GET /api/batches/{batch}/candidates.json (what the page shows) answers 200.
Target: the upload's median at most the sensor's median + 2 s.
Results: benchmarks/results/upload_latency.json.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from concurrent_landing import prepare, start_dagster, wait_until_ready  # noqa: E402
from report import write_report  # noqa: E402

from affluent_assets.lib import lake  # noqa: E402
from affluent_assets.lib.landing import batch_key_for  # noqa: E402
from affluent_assets_tests.servers import AffluentServe, stop  # noqa: E402

ROWS = 50_000
ALLOWANCE_SECONDS = 2.0


def demo_csv(path: Path, seed: int) -> Path:
    from affluent_assets.lib.demo_data import generate_customers
    from affluent_assets.lib.demo_files import write_extract

    return write_extract(generate_customers(ROWS, seed=seed).drop(columns="C_seg"), path)


def wait(condition, seconds: float = 300, interval: float = 0.1) -> float:
    """Seconds until `condition()` is true (polled every `interval`)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if condition():
            return time.monotonic() - started
        time.sleep(interval)
    raise TimeoutError(f"not done within {seconds} s")


def sensor_round(env: dict, staged: Path) -> float:
    landing = Path(env["AFFLUENT_LANDING"])
    os.replace(staged, landing / staged.name)
    listed = lake.batch_file(env["AFFLUENT_LAKE"], lake.CANDIDATES, batch_key_for(staged.name))
    return wait(listed.exists)


def upload_round(serve: AffluentServe, staged: Path) -> float:
    status, body = serve.upload(staged.name, staged.read_bytes())
    assert status == 202, body
    batch = json.loads(body)["batch"]
    path = f"/api/batches/{batch}/candidates.json"
    return wait(lambda: serve.request("GET", path)[0] == 200)


def measure(work: Path, rounds: int) -> dict:
    env = {**os.environ, **prepare(work)}
    server, port = start_dagster(env, work / "dagster-dev.log")
    serve = AffluentServe(env)
    try:
        wait_until_ready(server, port, work / "dagster-dev.log")
        serve.wait()
        sensor, upload = [], []
        staging = work / "staging"
        for number in range(rounds):
            dropped = demo_csv(staging / f"dropped_{number}.csv", 70 + number)
            sensor.append(sensor_round(env, dropped))
            uploaded = demo_csv(staging / f"uploaded_{number}.csv", 90 + number)
            upload.append(upload_round(serve, uploaded))
        return {"sensor_seconds": sensor, "upload_seconds": upload}
    finally:
        stop(serve.process)
        stop(server)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="affluent-upload-"))
    try:
        observed = measure(folder, args.rounds)
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    sensor = statistics.median(observed["sensor_seconds"])
    upload = statistics.median(observed["upload_seconds"])
    report = {
        "measured": "50,000-row CSV: moved into the landing folder -> candidates in the lake "
        "(sensor), vs end of POST /api/batches -> candidates.json answers (upload)",
        "rows": ROWS,
        "rounds": args.rounds,
        **{k: [round(v, 2) for v in values] for k, values in observed.items()},
        "sensor_median_seconds": round(sensor, 2),
        "upload_median_seconds": round(upload, 2),
        "upload_minus_sensor_seconds": round(upload - sensor, 2),
        "target_met": upload <= sensor + ALLOWANCE_SECONDS,
    }
    write_report("upload_latency", report)
    print(
        f"sensor {sensor:.1f} s, upload {upload:.1f} s (median of {args.rounds}); "
        f"target (upload <= sensor + {ALLOWANCE_SECONDS:.0f} s) met: {report['target_met']}"
    )
    return 0 if report["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
