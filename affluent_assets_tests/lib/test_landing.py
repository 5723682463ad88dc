"""Landing folder rules without Dagster: safe keys, signatures, the stable-size rule, the
cursor, hashing and quarantine that stays in its folder."""

import pytest

from affluent_assets.lib import landing
from affluent_assets.lib.landing import (
    FileSignature,
    LandingCursor,
    UnsafePath,
    batch_key_for,
    plan_tick,
    resolve_inside,
    scan_landing,
)

SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


@pytest.mark.parametrize(
    "name",
    [
        "etb.csv",
        "my file.csv",
        'O\'Brien "list".xlsx',
        "..evil..csv",
        "a...b.parquet",
        "x'; drop table batch_scores; --.csv",
        "ünïcødé.csv",
        "-dash.csv",
        "x" * 300 + ".csv",
    ],
)
def test_batch_keys_are_safe(name):
    key = batch_key_for(name)
    assert set(key) <= SAFE
    assert ".." not in key
    assert not key.startswith((".", "-"))
    assert len(key) <= landing.MAX_KEY_LENGTH + 9
    assert batch_key_for(name) == key  # deterministic


def test_batch_keys_keep_plain_names_and_never_collide():
    assert batch_key_for("etb_2024-06.csv") == "etb_2024-06.csv"
    names = ["my file.csv", "my_file.csv", "my'file.csv", 'my"file.csv', "a..csv", "a_.csv"]
    assert len({batch_key_for(n) for n in names}) == len(names)


def test_run_key_changes_with_size_or_mtime():
    base = FileSignature("a.csv", 10, 1_000)
    assert base.run_key == "a.csv:10:1000"
    assert FileSignature("a.csv", 11, 1_000).run_key != base.run_key
    assert FileSignature("a.csv", 10, 2_000).run_key != base.run_key


def test_scan_lists_only_landing_files_inside_the_folder(tmp_path):
    folder = tmp_path / "landing"
    folder.mkdir()
    (folder / "a.csv").write_text("x")
    (folder / "b.XLSX").write_text("x")
    (folder / "c.parquet").write_text("x")
    (folder / "notes.txt").write_text("x")
    (folder / ".hidden.csv").write_text("x")
    (folder / "~$lock.xlsx").write_text("x")
    (folder / "sub.csv").mkdir()
    outside = tmp_path / "secret.csv"
    outside.write_text("secret")
    (folder / "link.csv").symlink_to(outside)
    files = scan_landing(folder)
    assert sorted(files) == ["a.csv", "b.XLSX", "c.parquet"]
    assert files["a.csv"].size == 1
    assert scan_landing(tmp_path / "missing") == {}


@pytest.mark.parametrize("name", ["../x.csv", "a/b.csv", "..", "", "x\0.csv"])
def test_resolve_inside_refuses_escapes(tmp_path, name):
    with pytest.raises(UnsafePath):
        resolve_inside(tmp_path, name)


def test_cursor_round_trip_and_garbage():
    cursor = LandingCursor(scored={"a.csv": [1, 2]}, pending={"b.csv": [3, 4]})
    assert LandingCursor.deserialize(cursor.serialize()) == cursor
    for text in (None, "", "not json", '{"version": 99}', "[1, 2]"):
        assert LandingCursor.deserialize(text) == LandingCursor()


def sig(name, size, mtime=1):
    return FileSignature(name, size, mtime)


def test_plan_waits_one_tick_of_stable_size_then_requests_once():
    files = {"a.csv": sig("a.csv", 10)}
    first = plan_tick(LandingCursor(), files)
    assert first.ready == [] and first.settling == [files["a.csv"]]
    second = plan_tick(first.cursor, files)
    assert second.ready == [files["a.csv"]]
    third = plan_tick(second.cursor, files)
    assert third.ready == [] and third.unchanged == [files["a.csv"]]


def test_plan_growing_file_never_ready_until_it_stops():
    cursor = LandingCursor()
    for size in (0, 100, 200, 300):
        plan = plan_tick(cursor, {"a.csv": sig("a.csv", size)})
        assert plan.ready == []
        cursor = plan.cursor
    assert plan_tick(cursor, {"a.csv": sig("a.csv", 300)}).ready == [sig("a.csv", 300)]


def test_plan_changed_and_removed_files():
    cursor = LandingCursor(scored={"a.csv": [10, 1], "gone.csv": [5, 1]}, pending={"p.csv": [1, 1]})
    plan = plan_tick(cursor, {"a.csv": sig("a.csv", 10, 2)})
    assert plan.ready == [] and plan.removed == ["gone.csv", "p.csv"]
    assert "gone.csv" not in plan.cursor.scored and "p.csv" not in plan.cursor.pending
    again = plan_tick(plan.cursor, {"a.csv": sig("a.csv", 10, 2)})
    assert again.ready == [sig("a.csv", 10, 2)]
    assert again.cursor.scored == {"a.csv": [10, 2]}


def test_hold_back_keeps_ready_files_pending():
    files = {"a.csv": sig("a.csv", 10)}
    plan = plan_tick(plan_tick(LandingCursor(), files).cursor, files)
    held = landing.hold_back(plan)
    assert held.scored == {} and held.pending == {"a.csv": [10, 1]}
    assert plan_tick(held, files).ready == [files["a.csv"]]


def test_quarantine_moves_file_and_writes_reason(tmp_path):
    source = tmp_path / "landing" / "bad 'file'.csv"
    source.parent.mkdir()
    source.write_text("x")
    moved = landing.quarantine(source, tmp_path / "quarantine", "bad.csv: column 'C_AGE' ...")
    assert moved.parent == (tmp_path / "quarantine").resolve()
    assert moved.read_text() == "x" and not source.exists()
    reason = moved.with_name(moved.name + ".reason.txt").read_text()
    assert "column 'C_AGE'" in reason and "bad 'file'.csv" in reason
    # A second file of the same name does not overwrite the first.
    source.write_text("y")
    second = landing.quarantine(source, tmp_path / "quarantine", "again")
    assert second != moved and moved.read_text() == "x" and second.read_text() == "y"
    assert second.with_name(second.name + ".reason.txt").exists()


@pytest.mark.parametrize(
    "name",
    [
        "x" * 241 + ".csv",  # 245 bytes: the reason file's name alone would pass 255
        "y" * 251 + ".csv",  # 255 bytes: the longest legal name
        "é" * 123 + ".csv",  # 250 bytes in UTF-8, 127 characters
    ],
)
def test_a_file_with_a_long_name_is_quarantined_with_its_reason(tmp_path, name):
    source = tmp_path / "landing" / name
    source.parent.mkdir()
    source.write_text("x")
    moved = landing.quarantine(source, tmp_path / "quarantine", "broken: column 'C_AGE'")
    assert moved.name == name and moved.read_text() == "x" and not source.exists()
    reason = landing.reason_file_for(moved)
    assert len(reason.name.encode()) <= 255 and reason.name.endswith(".reason.txt")
    assert reason.name[:20] == name[:20]  # sorted beside its file
    assert reason.read_text().splitlines()[0] == f"file: {name}"
    # Again under the same name: a timestamped name that still fits, with its own reason.
    source.write_text("y")
    second = landing.quarantine(source, tmp_path / "quarantine", "again")
    assert second != moved and second.read_text() == "y"
    assert len(second.name.encode()) <= 255 and landing.reason_file_for(second).exists()
    assert len({p.name for p in (tmp_path / "quarantine").iterdir()}) == 4


def test_a_failed_move_leaves_the_file_in_landing_and_no_reason(tmp_path, monkeypatch):
    source = tmp_path / "landing" / "bad.csv"
    source.parent.mkdir()
    source.write_text("x")

    def refuse(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(landing.shutil, "move", refuse)
    with pytest.raises(OSError):
        landing.quarantine(source, tmp_path / "quarantine", "bad")
    assert source.exists() and not list((tmp_path / "quarantine").iterdir())


def test_every_entry_that_is_not_scored_says_why(tmp_path):
    folder = tmp_path / "landing"
    folder.mkdir()
    (folder / "a.csv").write_text("x")
    (folder / "..dots..csv").write_text("x")
    (folder / "~$book.xlsx").write_text("x")
    (folder / "notes.txt").write_text("x")
    (folder / "README").write_text("x")
    (folder / "x.csv").mkdir()
    (folder / "inside.csv").symlink_to(folder / "a.csv")
    ignored = landing.ignored_entries(folder)
    assert set(ignored) == {"..dots..csv", "~$book.xlsx", "notes.txt", "README", "x.csv",
                            "inside.csv"}  # fmt: skip
    assert "hidden name" in ignored["..dots..csv"]
    assert "lock file" in ignored["~$book.xlsx"]
    assert "unsupported file type (.txt)" in ignored["notes.txt"]
    assert "unsupported file type (no suffix)" in ignored["README"]
    assert "a folder" in ignored["x.csv"]
    assert "symbolic link" in ignored["inside.csv"]
    # Scanned or ignored: every entry gets one answer.
    assert set(scan_landing(folder)) | set(ignored) == {p.name for p in folder.iterdir()}
    assert not set(scan_landing(folder)) & set(ignored)


def test_a_file_scored_where_it_lies_is_a_batch_of_its_folder_and_name(tmp_path):
    landing_dir = tmp_path / "landing"
    a, b = tmp_path / "a" / "report.csv", tmp_path / "b" / "report.csv"
    keys = {landing.batch_key_for_path(p, landing_dir) for p in (a, b)}
    assert len(keys) == 2 and all(k.startswith("report.csv-") for k in keys)
    assert landing.batch_key_for_path(a, landing_dir) == landing.batch_key_for_path(a, landing_dir)
    # In the landing folder, the key the sensor gives the name.
    assert landing.batch_key_for_path(landing_dir / "report.csv", landing_dir) == "report.csv"


def test_a_file_quiet_for_a_tick_when_first_seen_is_ready_at_once():
    """Moved in whole (mtime older than a tick): a second look would show nothing new."""
    files = {"old.csv": sig("old.csv", 10, mtime=100), "fresh.csv": sig("fresh.csv", 10, 500)}
    plan = plan_tick(LandingCursor(), files, quiet_since_ns=200)
    assert plan.ready == [files["old.csv"]] and plan.settling == [files["fresh.csv"]]
    assert plan_tick(plan.cursor, files, quiet_since_ns=200).ready == [files["fresh.csv"]]


def test_an_empty_or_already_scored_quiet_file_is_not_requested_again():
    empty = {"empty.csv": sig("empty.csv", 0, mtime=1)}
    assert plan_tick(LandingCursor(), empty, quiet_since_ns=10).ready == []
    scored = LandingCursor(scored={"a.csv": [10, 1]})
    again = plan_tick(scored, {"a.csv": sig("a.csv", 10, 1)}, quiet_since_ns=10)
    assert again.ready == [] and again.unchanged == [sig("a.csv", 10, 1)]
