"""Alerts reach a real HTTP receiver once per event: a quarantined file, a failed run, a batch
with a significant drift, a realized precision short of the holdout's, a quarantined outcome
file (a kept champion: tests/test_main_graph.py); nothing is sent for a clean run or without a
webhook."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from affluent_assets.defs.alerts.sensors import AlertWebhook, check_alerts, failure_alerts
from affluent_assets.lib import registry
from affluent_assets.names import LANDING_FILE_TAG
from affluent_assets_tests.defs.test_landing_runs import demo, land, seed_training_tables
from affluent_assets_tests.defs.test_outcomes import materialize_outcomes


class Receiver:
    """A local HTTP server that keeps every JSON body POSTed to it."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/affluent"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver():
    receiving = Receiver()
    yield receiving
    receiving.server.shutdown()


def evaluate(sensor, instance: dg.DagsterInstance, result, webhook):
    """Evaluate a run-status sensor on the run's own final event, as the daemon does."""
    run = instance.get_run_by_id(result.run_id)
    kind = dg.DagsterEventType
    final = kind.RUN_SUCCESS if result.success else kind.RUN_FAILURE
    event = instance.get_records_for_run(run.run_id, of_type=final).records[0]
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=event.event_log_entry.dagster_event,
        dagster_instance=instance,
        dagster_run=run,
        resources={"alert_webhook": webhook},
    )
    return sensor(context.for_run_failure() if not result.success else context)


def test_a_quarantined_file_sends_one_alert_naming_it(landing_stores, receiver):
    frame = demo(rows=50, seed=5)
    frame["NUM_PRD"] = frame["NUM_PRD"].astype(object)
    frame.loc[7, "NUM_PRD"] = "many"
    land(landing_stores, "bad.csv", frame)
    result = landing_stores.run("bad.csv", tags={LANDING_FILE_TAG: "bad.csv"})
    assert not result.success
    webhook = AlertWebhook(url=receiver.url, ui_url="http://dagster.bank:3000/")
    evaluate(failure_alerts, landing_stores.instance, result, webhook)
    assert len(receiver.received) == 1
    alert = receiver.received[0]
    assert alert["kind"] == "file_quarantined" and alert["file"] == "bad.csv"
    assert "'NUM_PRD'" in alert["detail"] and "data rows 8 ('many')" in alert["detail"]
    assert alert["link"] == f"http://dagster.bank:3000/runs/{result.run_id}"


def test_a_run_that_fails_for_another_reason_says_so(landing_stores, receiver):
    result = landing_stores.run("no-such-file.csv")
    assert not result.success
    evaluate(failure_alerts, landing_stores.instance, result, AlertWebhook(url=receiver.url))
    [alert] = receiver.received
    assert alert["kind"] == "run_failed" and "no landing file" in alert["detail"]


def test_a_significant_drift_sends_one_alert_and_a_steady_batch_none(landing_stores, receiver):
    seed_training_tables(landing_stores)
    webhook = AlertWebhook(url=receiver.url)
    land(landing_stores, "steady.csv", rows=2000, seed=21)
    steady = landing_stores.run("steady.csv", tags={LANDING_FILE_TAG: "steady.csv"})
    assert isinstance(
        evaluate(check_alerts, landing_stores.instance, steady, webhook), dg.SkipReason
    )
    shifted = demo(rows=2000, seed=22)
    shifted["Asset value"] = shifted["Asset value"] * 30 + 100_000
    land(landing_stores, "shifted.csv", shifted)
    result = landing_stores.run("shifted.csv", tags={LANDING_FILE_TAG: "shifted.csv"})
    assert result.success
    evaluate(check_alerts, landing_stores.instance, result, webhook)
    [alert] = receiver.received
    assert alert["kind"] == "significant_drift" and alert["file"] == "shifted.csv"
    assert "asset_value" in alert["detail"]


def test_without_a_webhook_nothing_is_sent(landing_stores, receiver):
    result = landing_stores.run("missing.csv")
    skipped = evaluate(failure_alerts, landing_stores.instance, result, AlertWebhook(url=""))
    assert isinstance(skipped, dg.SkipReason) and receiver.received == []


def test_a_missed_expectation_and_a_bad_outcome_file_each_send_one_alert(
    landing_stores, receiver, tmp_path
):
    stores = landing_stores
    land(stores, "after-campaign.csv", rows=1500, seed=51, label=True)
    assert stores.run("after-campaign.csv").success
    registry.log_holdout_metrics(
        stores.models.tracking_uri, stores.models.model.run_id, {"precision": 0.99}
    )
    folder = tmp_path / "outcomes"
    folder.mkdir()
    (folder / "called.csv").write_text("customer_key,model_version\n1-1,1\n")
    result = materialize_outcomes(stores, outcomes_dir=str(folder))
    webhook = AlertWebhook(url=receiver.url)
    evaluate(check_alerts, stores.instance, result, webhook)
    by_kind = {alert["kind"]: alert for alert in receiver.received}
    # the scores' own estimate is far from that 0.99 too: calibration is flagged besides
    assert len(receiver.received) == 3
    assert set(by_kind) == {"outcome_expectation_missed", "calibration_broken", "file_quarantined"}
    assert "vs expected 0.990" in by_kind["outcome_expectation_missed"]["detail"]
    quarantined = by_kind["file_quarantined"]
    assert (
        quarantined["file"] == "called.csv"
        and "missing column 'upgraded'" in (quarantined["detail"])
    )
    assert quarantined["link"].endswith(f"/runs/{result.run_id}")
