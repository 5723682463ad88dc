"""Run-status sensors that send one webhook message per event worth a person's attention: a
failed run, a quarantined file, a champion kept over the newly trained model (the blocking
promotion check failed), a batch with a significant drift, and a realized precision below the
holdout's expectation. Off until AFFLUENT_ALERT_WEBHOOK
is set; each run is judged once (the sensors' own cursors)."""

from __future__ import annotations

import os

import dagster as dg

from affluent_assets.lib import alerts, landing
from affluent_assets.names import (
    CALIBRATION_CHECK,
    DRIFT_CHECK,
    ESTIMATE_CHECK,
    LANDING_FILE_TAG,
    OUTCOME_CHECK,
    OUTCOME_FILES_CHECK,
    PROMOTION_CHECK,
)


class AlertWebhook(dg.ConfigurableResource):
    """Where alerts go (empty: nowhere) and the Dagster UI address their links point into."""

    url: str = os.environ.get("AFFLUENT_ALERT_WEBHOOK", "")
    ui_url: str = os.environ.get("AFFLUENT_UI_URL", "http://localhost:3000")


def _checks(instance: dg.DagsterInstance, run_id: str) -> list:
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    return [r.event_log_entry.dagster_event.asset_check_evaluation_data for r in records]


def _step_failures(instance: dg.DagsterInstance, run_id: str) -> list:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    return [r.event_log_entry.dagster_event.step_failure_data for r in records.records]


def failure_alert(instance: dg.DagsterInstance, run: dg.DagsterRun, ui_url: str) -> alerts.Alert:
    """What a failed run means: a kept champion, a quarantined file, or a plain failure."""
    base = {
        "run_id": run.run_id,
        "job": run.job_name,
        "link": f"{ui_url.rstrip('/')}/runs/{run.run_id}",
        "file": run.tags.get(LANDING_FILE_TAG),
    }
    kept = [c for c in _checks(instance, run.run_id) if c.check_name == PROMOTION_CHECK]
    if kept and not kept[0].passed:
        version = kept[0].metadata.get("challenger_version")
        return alerts.Alert(
            alerts.CHAMPION_KEPT, "The champion was kept; the newly trained model was not "
            "promoted", kept[0].description or "", model_version=version and version.value,
            **base,
        )  # fmt: skip
    failures = _step_failures(instance, run.run_id)
    user = next((f.user_failure_data for f in failures if f.user_failure_data), None)
    failed = user.metadata.get("failed_batches") if user is not None else None
    moved = [f["file"] for f in (failed.value if failed else {}).values() if f["quarantined_as"]]
    if moved:  # one alert for the run: a group's quarantined files are named together
        base["file"] = ", ".join(moved)
        title = f"File{'s' if len(moved) > 1 else ''} quarantined: {base['file']}"
        return alerts.Alert(alerts.FILE_QUARANTINED, title, user.description or "", **base)
    message = user.description if user else (failures[0].error.message if failures else "")
    return alerts.Alert(
        alerts.RUN_FAILED, f"Run of {run.job_name} failed", message or "see the run", **base
    )


def _warning_alert(check, landing_file: str | None) -> tuple[str, str, str | None] | None:
    """(kind, title, file) of a failed warning check worth a person, or None."""
    if check.check_name == DRIFT_CHECK:
        return alerts.SIGNIFICANT_DRIFT, f"Significant drift in {landing_file}", landing_file
    if check.check_name == OUTCOME_CHECK:
        return alerts.OUTCOME_MISSED, "Realized precision below the holdout's expectation", None
    if check.check_name == ESTIMATE_CHECK:
        title = f"{landing_file}: its own estimate parts from the holdout's figure"
        return alerts.ESTIMATE_PARTED, title, landing_file
    if check.check_name == CALIBRATION_CHECK:
        return alerts.CALIBRATION_BROKEN, "Calibration broke for a population", None
    if check.check_name == OUTCOME_FILES_CHECK:
        names = check.metadata["quarantined"].value
        return alerts.FILE_QUARANTINED, f"Outcome file quarantined: {names}", names
    return None


def check_alerts_for(instance: dg.DagsterInstance, run: dg.DagsterRun, ui_url: str) -> list:
    """Alerts for a successful run's warnings worth a person: a landed batch with a significant
    drift, a model whose realized precision fell short of its holdout's, an outcome file
    quarantined."""
    found = []
    link = f"{ui_url.rstrip('/')}/runs/{run.run_id}"
    files = landing.run_batches(run.tags, run.run_config)  # a landing run's checks: per file
    for check in _checks(instance, run.run_id):
        what = None if check.passed else _warning_alert(check, files.get(check.partition))
        if what is None:
            continue
        kind, title, file = what
        found.append(
            alerts.Alert(kind, title, check.description or "", run_id=run.run_id,
                         job=run.job_name, link=link, file=file)
        )  # fmt: skip
    return found


@dg.run_failure_sensor(
    name="failure_alerts",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A webhook message per failed run: quarantined file, kept champion, or failure.",
)
def failure_alerts(context: dg.RunFailureSensorContext, alert_webhook: AlertWebhook):
    if not alert_webhook.url:
        return dg.SkipReason("AFFLUENT_ALERT_WEBHOOK is not set")
    alert = failure_alert(context.instance, context.dagster_run, alert_webhook.ui_url)
    alerts.post_alert(alert_webhook.url, alert)
    context.log.info(f"alert sent: {alert.kind} for run {alert.run_id}")


@dg.run_status_sensor(
    name="check_alerts",
    run_status=dg.DagsterRunStatus.SUCCESS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A webhook message when a landed batch drifted significantly, or a model's "
    "realized precision fell short of its holdout's, or an outcome file was quarantined.",
)
def check_alerts(context: dg.RunStatusSensorContext, alert_webhook: AlertWebhook):
    if not alert_webhook.url:
        return dg.SkipReason("AFFLUENT_ALERT_WEBHOOK is not set")
    found = check_alerts_for(context.instance, context.dagster_run, alert_webhook.ui_url)
    if not found:
        return dg.SkipReason("no warning worth an alert")
    for alert in found:
        alerts.post_alert(alert_webhook.url, alert)
        context.log.info(f"alert sent: {alert.kind} for run {alert.run_id}")
