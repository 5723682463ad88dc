"""Alerts to a webhook: one JSON message per event worth a person's attention (a failed run, a
quarantined file, a significant drift, a champion kept over a newly trained model), saying what
happened, to which file or model, and where to look in the Dagster UI."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

RUN_FAILED = "run_failed"
FILE_QUARANTINED = "file_quarantined"
SIGNIFICANT_DRIFT = "significant_drift"
CHAMPION_KEPT = "champion_kept"
OUTCOME_MISSED = "outcome_expectation_missed"
CALIBRATION_BROKEN = "calibration_broken"


@dataclass(frozen=True)
class Alert:
    kind: str
    title: str
    detail: str
    run_id: str
    job: str
    link: str
    file: str | None = None
    model_version: str | None = None

    def body(self) -> dict:
        return {**asdict(self), "sent_at": datetime.now(UTC).isoformat(timespec="seconds")}


def post_alert(url: str, alert: Alert, attempts: int = 3, timeout: float = 5.0) -> None:
    """POST the alert as JSON; retried on connection errors and 5xx. Raises after `attempts`
    so the sensor's tick shows the failure (and Dagster evaluates the run again)."""
    data = json.dumps(alert.body()).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout):
                return
        except urllib.error.HTTPError as error:
            if error.code < 500 or attempt == attempts:
                raise
        except OSError:
            if attempt == attempts:
                raise
        time.sleep(0.5 * attempt)
