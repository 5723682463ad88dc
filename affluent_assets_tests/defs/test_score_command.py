"""`affluent score PATH` as a user runs it: a separate process, the landing assets and checks,
the run recorded in a Dagster instance, and exit codes a script can rely on."""

import json
import os
import subprocess
import sys

import dagster as dg
import duckdb

from affluent_assets.lib.demo_data import generate_customers, write_extract


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
