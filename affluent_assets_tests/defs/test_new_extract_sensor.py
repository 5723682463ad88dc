"""The retraining sensor, one test per scenario: nothing there, a new extract (waits one tick,
then starts the main graph once), one the main graph already ran after, a replaced extract."""

import os
import time
import uuid

import dagster as dg
import pytest

from affluent_assets.defs.ingest.sensors import new_extract_sensor
from affluent_assets.defs.resources import ExtractSource


class Ticker:
    def __init__(self, folder):
        self.folder = folder
        self.cursor = None
        self.instance = dg.DagsterInstance.ephemeral()

    def tick(self):
        context = dg.build_sensor_context(
            cursor=self.cursor,
            instance=self.instance,
            resources={"extract": ExtractSource(location=str(self.folder))},
        )
        result = new_extract_sensor(context)
        if isinstance(result, dg.SensorResult) and result.cursor is not None:
            self.cursor = result.cursor
        return result


def run_keys(result) -> list[str]:
    return [r.run_key for r in getattr(result, "run_requests", None) or []]


def skip_text(result) -> str:
    reason = result.skip_reason if isinstance(result, dg.SensorResult) else result
    return getattr(reason, "skip_message", None) or str(reason)


@pytest.fixture
def ticker(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    return Ticker(folder)


def write(folder, name, text="C_ID\n1\n", mtime=None):
    path = folder / name
    path.write_text(text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_no_extract_means_demo_data_and_no_run(ticker):
    assert "no extract file" in skip_text(ticker.tick())


def test_a_new_extract_waits_one_tick_then_starts_the_main_graph_once(ticker):
    write(ticker.folder, "ETB_2026_12.xlsx")
    first = ticker.tick()
    assert run_keys(first) == [] and "waiting one tick" in skip_text(first)
    second = ticker.tick()
    [request] = second.run_requests
    assert request.run_key.startswith("ETB_2026_12.xlsx:") and request.tags["affluent/extract"]
    assert "already trained on" in skip_text(ticker.tick())


def test_an_extract_the_main_graph_already_ran_after_starts_nothing(ticker):
    write(ticker.folder, "etb.csv", mtime=time.time() - 3600)
    ticker.instance.add_run(
        dg.DagsterRun(
            job_name="affluent_job", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.SUCCESS
        )
    )
    assert "unchanged since the last main-graph run" in skip_text(ticker.tick())
    assert run_keys(ticker.tick()) == []


def test_a_replaced_extract_is_trained_on_again(ticker):
    write(ticker.folder, "etb.csv")
    ticker.tick()
    assert len(run_keys(ticker.tick())) == 1
    write(ticker.folder, "etb.csv", text="C_ID\n1\n2\n", mtime=time.time() + 5)
    assert run_keys(ticker.tick()) == []  # settling
    assert len(run_keys(ticker.tick())) == 1
