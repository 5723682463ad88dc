"""The landing sensor on a temporary folder, one test per cursor scenario: new, unchanged,
changed, still growing, removed; plus no model yet, bad names, and ticks that never read; and
how the files of a tick are grouped into runs: small new files together, a large file or one
landing again alone, a file whose earlier version has a run under way held back."""

import builtins
import io
import os
import pathlib
import threading
import time
from dataclasses import replace

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from dagster._core.utils import make_new_run_id

from affluent_assets import settings
from affluent_assets.defs.landing import sensors
from affluent_assets.defs.landing.assets import landed_batches
from affluent_assets.defs.landing.sensors import build_landing_sensor
from affluent_assets.lib.landing import LandingCursor, batch_key_for
from affluent_assets.names import LANDING_FILE_TAG


class Ticker:
    """Calls the sensor the way the daemon does: each tick gets the previous tick's cursor."""

    def __init__(self, folder, models):
        # Each tick happens just after the newest write: the files were dropped a moment ago.
        # It looks once (watching is tested on its own, with the real clock).
        self.sensor = build_landing_sensor(
            name="test_landing_sensor", landing_dir=str(folder),
            clock=lambda: just_after(folder), watch_seconds=0,
        )  # fmt: skip
        self.models = models
        self.cursor = None
        self.instance = dg.DagsterInstance.ephemeral()

    def tick(self) -> dg.SensorResult:
        context = dg.build_sensor_context(
            cursor=self.cursor,
            instance=self.instance,
            resources={"mlflow_models": self.models.resource()},
        )
        result = self.sensor(context)
        assert isinstance(result, dg.SensorResult)
        self.cursor = result.cursor
        for add in result.dynamic_partitions_requests or []:  # as the daemon does
            self.instance.add_dynamic_partitions(add.partitions_def_name, list(add.partition_keys))
        return result

    def settle(self) -> dg.SensorResult:
        """Two ticks: the first sees the files, the second finds their size unchanged."""
        self.tick()
        return self.tick()


def just_after(folder) -> int:
    """A second after the newest mtime of the files in `folder` (ns; links are not files)."""
    files = [p for p in folder.iterdir() if p.is_file() and not p.is_symlink()]
    return max((p.stat().st_mtime_ns for p in files), default=0) + 10**9


def write(folder, name, data=b"C_ID\n1\n", mtime=1_700_000_000):
    path = folder / name
    path.write_bytes(data)
    os.utime(path, ns=(mtime * 10**9, mtime * 10**9))
    return path


def run_keys(result) -> list[str]:
    return [r.run_key for r in result.run_requests or []]


@pytest.fixture
def ticker(tmp_path, model_store):
    folder = tmp_path / "landing"
    folder.mkdir()
    ticker = Ticker(folder, model_store)
    ticker.folder = folder
    return ticker


def test_new_file_is_requested_once_its_size_is_stable(ticker):
    write(ticker.folder, "etb.csv")
    first = ticker.tick()
    assert not first.run_requests
    assert "settling" in first.skip_reason.skip_message
    second = ticker.tick()
    (request,) = second.run_requests
    assert request.partition_key == "etb.csv"
    assert request.run_key == "etb.csv:7:1700000000000000000"
    assert request.tags[LANDING_FILE_TAG] == "etb.csv"
    assert request.run_config["ops"]["batch_scores"]["config"]["landing_dir"] == str(ticker.folder)
    (add,) = second.dynamic_partitions_requests
    assert add.partitions_def_name == landed_batches.name
    assert list(add.partition_keys) == ["etb.csv"]


def test_unchanged_file_is_not_requested_again(ticker):
    write(ticker.folder, "etb.csv")
    assert run_keys(ticker.settle()) == ["etb.csv:7:1700000000000000000"]
    for _ in range(3):
        result = ticker.tick()
        assert not result.run_requests
        assert "already scored and unchanged" in result.skip_reason.skip_message


def test_changed_file_is_requested_again_with_a_new_run_key(ticker):
    write(ticker.folder, "etb.csv")
    (first,) = run_keys(ticker.settle())
    write(ticker.folder, "etb.csv", data=b"C_ID\n1\n2\n", mtime=1_700_000_100)
    assert not ticker.tick().run_requests  # changed: wait one tick for it to settle
    (second,) = run_keys(ticker.tick())
    assert second != first and second.startswith("etb.csv:9:")
    # Same size, new mtime (rewritten in place) also counts as a change.
    write(ticker.folder, "etb.csv", data=b"C_ID\n3\n4\n", mtime=1_700_000_200)
    assert run_keys(ticker.settle()) == ["etb.csv:9:1700000200000000000"]


def test_growing_file_waits_until_its_size_stops_changing(ticker):
    path = write(ticker.folder, "big.csv", data=b"")
    for chunk in range(4):
        result = ticker.tick()
        assert not result.run_requests, f"requested while still growing (chunk {chunk})"
        with path.open("ab") as handle:
            handle.write(b"x" * 1000)
    assert not ticker.tick().run_requests  # first tick at the final size
    (request,) = ticker.tick().run_requests
    assert request.run_key.startswith("big.csv:4000:")


def test_removed_file_leaves_the_cursor(ticker):
    path = write(ticker.folder, "etb.csv")
    ticker.settle()
    path.unlink()
    result = ticker.tick()
    assert not result.run_requests
    assert "gone" in result.skip_reason.skip_message
    cursor = LandingCursor.deserialize(result.cursor)
    assert cursor.scored == {} and cursor.pending == {}
    # Dropped again later, it is a new file again (content dedup happens in the run).
    write(ticker.folder, "etb.csv")
    assert run_keys(ticker.settle()) == ["etb.csv:7:1700000000000000000"]


def files_of(request: dg.RunRequest) -> dict[str, str]:
    return request.run_config["ops"]["batch_scores"]["config"]["files"]


def test_small_files_of_one_tick_share_a_run_over_their_range_of_keys(ticker):
    for name in ("c.parquet", "a.csv", "b.xlsx", "notes.txt", ".partial.csv"):
        write(ticker.folder, name)
    result = ticker.settle()
    (request,) = result.run_requests
    assert files_of(request) == {"a.csv": "a.csv", "b.xlsx": "b.xlsx", "c.parquet": "c.parquet"}
    assert request.partition_key is None and LANDING_FILE_TAG not in request.tags
    assert request.tags[ASSET_PARTITION_RANGE_START_TAG] == "a.csv"
    assert request.tags[ASSET_PARTITION_RANGE_END_TAG] == "c.parquet"
    assert request.run_key.startswith("group:3:")
    # The keys are added in the range's order, so the range holds exactly these files.
    (add,) = result.dynamic_partitions_requests
    assert list(add.partition_keys) == ["a.csv", "b.xlsx", "c.parquet"]
    assert ticker.instance.get_dynamic_partitions(landed_batches.name) == list(add.partition_keys)
    assert not ticker.tick().run_requests  # requested once


def test_groups_hold_at_most_the_configured_number_of_files(ticker, monkeypatch):
    monkeypatch.setenv("AFFLUENT_LANDING_GROUP_FILES", "2")
    for name in ("a.csv", "b.csv", "c.csv"):
        write(ticker.folder, name)
    requests = ticker.settle().run_requests
    assert [sorted(files_of(r)) for r in requests] == [["a.csv", "b.csv"], ["c.csv"]]
    assert requests[1].partition_key == "c.csv"  # a group of one is an ordinary run
    monkeypatch.setenv("AFFLUENT_LANDING_GROUP_FILES", "1")
    for name in ("d.csv", "e.csv"):
        write(ticker.folder, name)
    assert [r.partition_key for r in ticker.settle().run_requests] == ["d.csv", "e.csv"]


def test_a_large_file_has_a_run_of_its_own(ticker, monkeypatch):
    monkeypatch.setenv("AFFLUENT_LANDING_GROUP_MAX_MB", str(100 / 1024 / 1024))  # 100 bytes
    write(ticker.folder, "a.csv")
    write(ticker.folder, "big.csv", data=b"C_ID\n" + b"1\n" * 100)
    write(ticker.folder, "c.csv")
    result = ticker.settle()
    grouped, alone = result.run_requests
    assert sorted(files_of(grouped)) == ["a.csv", "c.csv"] and alone.partition_key == "big.csv"
    # The group's keys first, so the large file's key is not inside the group's range.
    assert list(result.dynamic_partitions_requests[0].partition_keys) == [
        "a.csv",
        "c.csv",
        "big.csv",
    ]


def test_a_file_landing_again_under_a_known_key_has_a_run_of_its_own(ticker):
    write(ticker.folder, "etb.csv")
    ticker.settle()
    write(ticker.folder, "etb.csv", data=b"C_ID\n1\n2\n", mtime=1_700_000_100)
    write(ticker.folder, "new.csv", mtime=1_700_000_100)
    write(ticker.folder, "other.csv", mtime=1_700_000_100)
    result = ticker.settle()
    assert [sorted(files_of(r)) for r in result.run_requests] == [
        ["new.csv", "other.csv"], ["etb.csv"],
    ]  # fmt: skip
    assert list(result.dynamic_partitions_requests[0].partition_keys) == ["new.csv", "other.csv"]


def test_a_file_whose_earlier_version_has_a_run_under_way_waits_for_it(ticker):
    """Two runs of one file at once could publish the older content last."""
    write(ticker.folder, "etb.csv")
    write(ticker.folder, "free.csv")
    in_flight = DagsterRun(
        job_name="landing_job", run_id=make_new_run_id(), status=dg.DagsterRunStatus.STARTED,
        run_config={"ops": {"batch_scores": {"config": {"files": {"etb.csv": "etb.csv"}}}}},
    )  # fmt: skip
    ticker.instance.add_run(in_flight)
    result = ticker.settle()
    assert [files_of(r) for r in result.run_requests] == [{"free.csv": "free.csv"}]
    assert "etb.csv" in LandingCursor.deserialize(result.cursor).pending
    waiting = ticker.tick()
    assert not waiting.run_requests
    assert (
        "1 file(s) wait for the runs of their earlier versions" in waiting.skip_reason.skip_message
    )
    ticker.instance.report_run_canceled(in_flight)
    assert run_keys(ticker.tick()) == ["etb.csv:7:1700000000000000000"]


def test_hostile_names_get_safe_partition_keys(ticker, tmp_path):
    name = 'O\'Brien "list" ..; drop table x.csv'
    write(ticker.folder, name)
    (tmp_path / "outside.csv").write_bytes(b"secret")
    (ticker.folder / "link.csv").symlink_to(tmp_path / "outside.csv")
    (request,) = ticker.settle().run_requests
    assert request.partition_key == batch_key_for(name)
    assert request.tags[LANDING_FILE_TAG] == name


def test_no_model_yet_skips_with_a_reason_and_keeps_the_file_waiting(ticker, tmp_path):
    models = ticker.models
    ticker.models = replace(models, tracking_uri=f"sqlite:///{tmp_path / 'empty.db'}")
    write(ticker.folder, "etb.csv")
    ticker.tick()
    result = ticker.tick()
    assert not result.run_requests and not result.dynamic_partitions_requests
    message = result.skip_reason.skip_message
    assert "no 'champion' version" in message and "affluent_classifier" in message
    assert "etb.csv" in LandingCursor.deserialize(result.cursor).pending
    ticker.models = models  # a model is registered: the waiting file goes at once
    assert run_keys(ticker.tick()) == ["etb.csv:7:1700000000000000000"]


def test_a_tick_never_opens_a_landing_file(ticker, monkeypatch):
    write(ticker.folder, "etb.csv")
    folder = str(ticker.folder)

    def guard(real):
        def opener(file, *args, **kwargs):
            assert not str(file).startswith(folder), f"tick opened {file}"
            return real(file, *args, **kwargs)

        return opener

    monkeypatch.setattr(builtins, "open", guard(builtins.open))
    monkeypatch.setattr(io, "open", guard(io.open))
    monkeypatch.setattr(pathlib.Path, "open", lambda self, *a, **k: guard(io.open)(self, *a, **k))
    assert run_keys(ticker.settle()) == ["etb.csv:7:1700000000000000000"]


def test_the_definitions_sensor_is_on_by_default():
    from affluent_assets.definitions import defs

    sensor = defs.resolve_sensor_def("landing_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds <= 5
    assert settings.landing_watch_seconds() == 4  # most of the daemon's 5 s between ticks
    assert sensor.job_name == "landing_job"
    job = defs.resolve_job_def("affluent_job")
    keys = {key.to_user_string() for key in job.asset_layer.executable_asset_keys}
    assert not keys & {"batch_scores", "batch_candidates"}
    assert "landed_batch_views" in keys  # created by the main graph, only read by landing runs


def test_entries_that_are_not_scored_are_named_in_the_tick_summary(ticker):
    write(ticker.folder, "..dots..csv")
    write(ticker.folder, "notes.txt")
    (ticker.folder / "x.csv").mkdir()
    (ticker.folder / "link.csv").symlink_to(ticker.folder / "notes.txt")
    first = ticker.tick()
    assert not first.run_requests
    summary = first.skip_reason.skip_message
    assert "4 entries not scored" in summary
    assert "'..dots..csv': a hidden name" in summary and "'x.csv': a folder" in summary
    assert "'link.csv': a symbolic link" in summary and "'notes.txt': unsupported" in summary
    # Reported in the log once: the cursor remembers, and forgets an entry once it is gone.
    assert LandingCursor.deserialize(ticker.cursor).ignored == [
        "..dots..csv", "link.csv", "notes.txt", "x.csv",
    ]  # fmt: skip
    (ticker.folder / "link.csv").unlink()
    ticker.tick()
    assert "link.csv" not in LandingCursor.deserialize(ticker.cursor).ignored


def test_a_file_moved_in_whole_is_requested_at_first_sight(tmp_path, model_store):
    """Not written to for a tick when the sensor first sees it (renamed into place from a
    staging folder): a second look would show nothing new. A fresh file still waits."""
    folder = tmp_path / "landing"
    folder.mkdir()
    write(folder, "moved.csv", mtime=1_700_000_000)
    write(folder, "fresh.csv", mtime=1_700_000_100)
    ticker = Ticker(folder, model_store)
    ticker.sensor = build_landing_sensor(
        name="test_landing_sensor", landing_dir=str(folder),
        clock=lambda: (1_700_000_100 + 1) * 10**9, watch_seconds=0,
    )  # fmt: skip
    assert run_keys(ticker.tick()) == ["moved.csv:7:1700000000000000000"]
    assert run_keys(ticker.tick()) == ["fresh.csv:7:1700000100000000000"]
    empty = folder / "empty.csv"
    empty.write_bytes(b"")
    os.utime(empty, ns=(1_700_000_000 * 10**9,) * 2)
    assert not ticker.tick().run_requests  # an empty file waits however old it is


def _watching_ticker(folder, models, watch_seconds: float) -> Ticker:
    ticker = Ticker(folder, models)
    ticker.sensor = build_landing_sensor(
        name="test_landing_sensor", landing_dir=str(folder), watch_seconds=watch_seconds
    )
    return ticker


def test_a_file_landing_during_a_tick_is_requested_by_that_tick(tmp_path, model_store):
    """Dagster starts a tick every 5 s at most: a tick with nothing ready watches the folder,
    so a file moved in whole while it watches is requested at once, not 5 s later."""
    folder, staging = tmp_path / "landing", tmp_path / "staging"
    folder.mkdir()
    staging.mkdir()
    staged = write(staging, "etb.csv")  # written long ago: ready at first sight
    mover = threading.Timer(0.5, os.replace, (staged, folder / "etb.csv"))
    mover.start()
    try:
        result = _watching_ticker(folder, model_store, watch_seconds=30).tick()
    finally:
        mover.join()
    assert run_keys(result) == ["etb.csv:7:1700000000000000000"]


def test_a_file_still_written_during_a_tick_waits_until_it_is_quiet(tmp_path, model_store):
    """Within the watch, a file is ready once not written to for TICK_SECONDS (its mtime):
    a file appended to every 0.3 s for 2.5 s is requested with its final size."""
    folder = tmp_path / "landing"
    folder.mkdir()
    path = folder / "etb.csv"
    path.write_bytes(b"C_ID\n")

    def append():
        for row in range(8):
            time.sleep(0.3)
            with path.open("ab") as out:
                out.write(f"{row}\n".encode())

    writer = threading.Thread(target=append)
    writer.start()
    try:
        result = _watching_ticker(folder, model_store, watch_seconds=30).tick()
    finally:
        writer.join()
    (key,) = run_keys(result)
    assert key.startswith(f"etb.csv:{path.stat().st_size}:")


def test_a_tick_with_nothing_ready_watches_for_its_window_then_skips(tmp_path, model_store):
    folder = tmp_path / "landing"
    folder.mkdir()
    started = time.monotonic()
    result = _watching_ticker(folder, model_store, watch_seconds=1.5).tick()
    assert not result.run_requests and result.skip_reason
    assert time.monotonic() - started >= 1.5 - sensors.POLL_SECONDS


def test_a_file_changed_during_a_watch_is_not_confirmed_by_the_next_tick(tmp_path, model_store):
    """The next tick confirms a file unchanged against what a tick saw when it began: one
    written to while the tick watched is new to the next tick, which waits again (had the last
    look counted, it would be requested after being still for a moment only)."""
    folder = tmp_path / "landing"
    folder.mkdir()
    path = folder / "etb.csv"
    path.write_bytes(b"C_ID\n1\n")
    writer = threading.Timer(0.3, lambda: path.write_bytes(b"C_ID\n1\n2\n"))
    writer.start()
    ticker = _watching_ticker(folder, model_store, watch_seconds=1.5)
    try:
        assert not ticker.tick().run_requests  # written 0.3 s in: not quiet for 2 s yet
    finally:
        writer.join()
    ticker.sensor = build_landing_sensor(
        name="test_landing_sensor", landing_dir=str(folder), watch_seconds=0
    )
    result = ticker.tick()
    assert not result.run_requests and "settling" in result.skip_reason.skip_message
