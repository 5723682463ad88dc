"""The outcomes sensor, one test per cursor scenario: nothing there, a new file (waits a tick,
then one outcomes run), the same file again, a changed file, entries it does not read."""

import os

import dagster as dg
import pytest

from affluent_assets.defs.monitoring.outcomes import build_outcomes_sensor

CONTENT = "customer_key,model_version,upgraded\n1-1,3,yes\n"


class Ticker:
    def __init__(self, folder):
        self.sensor = build_outcomes_sensor(outcomes_dir=str(folder))
        self.cursor = None

    def tick(self):
        result = self.sensor(dg.build_sensor_context(cursor=self.cursor))
        if result.cursor is not None:
            self.cursor = result.cursor
        return result


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "outcomes"
    path.mkdir()
    return path


def write(folder, name: str, text: str = CONTENT, mtime: int = 1_700_000_000):
    path = folder / name
    path.write_text(text)
    os.utime(path, (mtime, mtime))
    return path


def test_no_files_no_run(folder):
    result = Ticker(folder).tick()
    assert not result.run_requests and result.skip_reason.skip_message == "no new outcome files"


def test_a_new_file_waits_one_tick_then_starts_one_run(folder):
    ticker = Ticker(folder)
    write(folder, "march.csv")
    first = ticker.tick()
    assert not first.run_requests and "1 outcome file(s) settling" in first.skip_reason.skip_message
    [request] = ticker.tick().run_requests
    assert request.run_config == {
        "ops": {"model_outcomes": {"config": {"outcomes_dir": str(folder)}}}
    }
    assert request.tags["affluent/outcome_files"] == "march.csv"
    assert not ticker.tick().run_requests  # already read, unchanged


def test_a_changed_file_is_read_again(folder):
    ticker = Ticker(folder)
    write(folder, "march.csv")
    ticker.tick()
    [first] = ticker.tick().run_requests
    write(folder, "march.csv", CONTENT + "1-2,3,no\n", mtime=1_700_000_100)
    assert not ticker.tick().run_requests  # settling at its new size
    [again] = ticker.tick().run_requests
    assert again.run_key != first.run_key


def test_entries_it_does_not_read_are_named_and_its_quarantine_is_not(folder):
    (folder / "quarantine").mkdir()
    write(folder, "notes.txt")
    write(folder, ".hidden.csv")
    reason = Ticker(folder).tick().skip_reason.skip_message
    assert "'notes.txt' not read: unsupported file type (.txt)" in reason
    assert "'.hidden.csv' not read: a hidden name" in reason
    assert "quarantine" not in reason
