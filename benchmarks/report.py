"""Writing a benchmark's results file with the machine and time it was measured on."""

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def write_report(name: str, report: dict) -> Path:
    """benchmarks/results/<name>.json, with the machine and the measuring time added."""
    report = {
        **report,
        "machine": f"{os.cpu_count()} cores {platform.machine()}, "
        f"Python {platform.python_version()}",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return path
