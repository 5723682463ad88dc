"""`affluent score PATH` as a user runs it: a separate process, the landing assets and checks,
the run recorded in a Dagster instance, and exit codes a script can rely on."""

import json
import os
import subprocess
import sys

import dagster as dg
import duckdb

from affluent_assets.lib.demo_data import generate_customers
from affluent_assets.lib.demo_files import write_extract
from affluent_assets.names import CHAMPION_VERSION_TAG


def affluent(stores, tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "MLFLOW_TRACKING_URI": stores.models.tracking_uri,
        "AFFLUENT_LAKE": str(stores.lake),
        "AFFLUENT_WAREHOUSE": str(stores.warehouse),
        "AFFLUENT_QUARANTINE": str(stores.quarantine),
    }
    (tmp_path / "dagster_home").mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "affluent_assets.cli", "score", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_good_file_is_scored_and_the_run_is_recorded(landing_stores, tmp_path):
    path = tmp_path / "branch list.csv"
    write_extract(generate_customers(700, seed=31).drop(columns="C_seg"), path)
    report = tmp_path / "report.json"
    done = affluent(landing_stores, tmp_path, str(path), "--chunk-rows", "300", "--top", "3",
                    "--report-json", str(report))  # fmt: skip
    assert done.returncode == 0, done.stderr
    figures = json.loads(report.read_text())
    assert figures["rows"] == 700 and figures["batch_key"].startswith("branch_list.csv")
    assert f"{figures['candidates']:,} candidates" in done.stdout
    assert "reason_1" in done.stdout  # the top candidates with their reasons
    with duckdb.connect(str(landing_stores.warehouse), read_only=True) as con:
        rows = con.execute("select count(*) from batch_scores").fetchall()[0][0]
        listed = con.execute("select count(*) from latest_candidates").fetchall()[0][0]
    assert rows == 700 and listed == figures["candidates"]
    instance = dg.DagsterInstance.from_config(str(tmp_path / "dagster_home"))
    runs = instance.get_runs()
    assert [r.job_name for r in runs] == ["landing_job"] and runs[0].is_success
    # The champion's version was asked before the run, as the landing sensor asks it.
    assert runs[0].tags[CHAMPION_VERSION_TAG] == figures["model_version"]


def test_a_bad_file_exits_1_with_the_reason_and_is_quarantined(landing_stores, tmp_path):
    frame = generate_customers(50, seed=32)
    frame["NUM_PRD"] = frame["NUM_PRD"].astype(object)
    frame.loc[41, "NUM_PRD"] = "lots"
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    done = affluent(landing_stores, tmp_path, str(path))
    assert done.returncode == 1
    assert "bad.csv: breaks the data contract" in done.stderr
    assert "'NUM_PRD'" in done.stderr and "data rows 42 ('lots')" in done.stderr
    assert not path.exists() and (landing_stores.quarantine / "bad.csv.reason.txt").exists()
    assert "Traceback" not in done.stderr


def test_usage_errors_exit_2(landing_stores, tmp_path):
    missing = affluent(landing_stores, tmp_path, str(tmp_path / "nothing.csv"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    (tmp_path / "notes.txt").write_text("x")
    other = affluent(landing_stores, tmp_path, str(tmp_path / "notes.txt"))
    assert other.returncode == 2 and "not a landing file" in other.stderr


def _rows_by_batch(stores) -> dict[str, int]:
    with duckdb.connect(str(stores.warehouse), read_only=True) as con:
        found = con.execute("select batch_key, count(*) from batch_scores group by all").fetchall()
    return dict(found)


def test_files_of_one_name_in_two_folders_are_two_batches(landing_stores, tmp_path):
    a, b = tmp_path / "a" / "report.csv", tmp_path / "b" / "report.csv"
    for path, rows, seed in ((a, 120, 41), (b, 80, 42)):
        path.parent.mkdir()
        write_extract(generate_customers(rows, seed=seed).drop(columns="C_seg"), path)
        done = affluent(landing_stores, tmp_path, str(path), "--top", "0")
        assert done.returncode == 0, done.stderr
        assert "replaces" not in done.stdout
    counts = _rows_by_batch(landing_stores)
    assert sorted(counts.values()) == [80, 120] and len(counts) == 2
    key_a = next(key for key, rows in counts.items() if rows == 120)
    # The same file again, fixed: the same batch, replaced, and the command says so.
    write_extract(generate_customers(50, seed=43).drop(columns="C_seg"), a)
    done = affluent(landing_stores, tmp_path, str(a), "--top", "0")
    assert done.returncode == 0, done.stderr
    assert f"report.csv: replaces batch {key_a!r}: its 120 rows of different content" in done.stdout
    assert _rows_by_batch(landing_stores) == {key_a: 50, **{k: 80 for k in counts if k != key_a}}
    # A copy of b's content elsewhere: no rows added, and the batch holding them named.
    copy = tmp_path / "c" / "copy.csv"
    copy.parent.mkdir()
    copy.write_bytes(b.read_bytes())
    done = affluent(landing_stores, tmp_path, str(copy))
    key_b = next(k for k in counts if k != key_a)
    assert done.returncode == 0 and f"same content already scored as batch {key_b!r}" in done.stdout


def test_data_quality_warnings_are_printed_and_a_repeat_is_listed_once(landing_stores, tmp_path):
    frame = generate_customers(400, seed=44).drop(columns="C_seg")
    frame.iloc[200:400] = frame.iloc[0:200].to_numpy()
    path = tmp_path / "twice.csv"
    write_extract(frame, path)
    done = affluent(landing_stores, tmp_path, str(path), "--top", "0")
    assert done.returncode == 0, done.stderr
    assert (
        "warning: 200 × row(s) repeat an earlier row exactly (scored, but listed once on the "
        "call list) (e.g. data row 201, data row 202" in done.stderr
    ), done.stderr
    with duckdb.connect(str(landing_stores.warehouse), read_only=True) as con:
        stored = con.execute("select count(*) from batch_scores").fetchall()[0][0]
        listed = con.execute("select max(source_row), count(*) from latest_candidates").fetchall()
    assert stored == 400 and listed[0][0] <= 200 and listed[0][1] > 0
