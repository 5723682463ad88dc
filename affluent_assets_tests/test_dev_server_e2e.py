"""End to end with the real processes: `dagster dev` (webserver + daemon) on a temporary
DAGSTER_HOME and free port; the landing sensor (on by default) scores a dropped demo file into
DuckDB and quarantines a bad one. Needs no network; takes about a minute."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from affluent_assets.lib.demo_data import generate_customers, write_extract
from affluent_assets_tests.defs.conftest import register_tiny_model
from affluent_assets_tests.servers import free_port, stop

REPO = Path(__file__).resolve().parent.parent
DAGSTER = Path(sys.executable).with_name("dagster")
ROWS = 2_000
DEADLINE_SECONDS = 150


def count_rows(warehouse: Path, sql: str, params: list) -> int | None:
    """A short read-only look; None while the file is missing or a writer holds the lock."""
    if not warehouse.exists():
        return None
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            return con.execute(sql, params).fetchall()[0][0]
    except duckdb.Error:
        return None


def wait_for(condition, what: str, server: subprocess.Popen, log: Path):
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if server.poll() is not None:
            pytest.fail(f"dagster dev exited ({server.returncode}):\n{log.read_text()[-4000:]}")
        time.sleep(1)
    pytest.fail(f"timed out waiting for {what}; dagster dev log:\n{log.read_text()[-4000:]}")


@pytest.mark.skipif(not DAGSTER.exists(), reason="dagster CLI not installed in this environment")
def test_dropped_files_are_scored_or_quarantined_by_dagster_dev(tmp_path):
    models = register_tiny_model(tmp_path / "mlflow")
    home, data = tmp_path / "dagster_home", tmp_path / "data"
    home.mkdir()
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    landing, quarantine, warehouse = data / "landing", data / "quarantine", data / "wh.duckdb"
    landing.mkdir(parents=True)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "AFFLUENT_DATA_DIR": str(data),
        "AFFLUENT_LANDING": str(landing),
        "AFFLUENT_QUARANTINE": str(quarantine),
        "AFFLUENT_WAREHOUSE": str(warehouse),
        "MLFLOW_TRACKING_URI": models.tracking_uri,
        "AFFLUENT_MLFLOW_ARTIFACTS": models.artifact_root,
    }
    log = tmp_path / "dagster-dev.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(DAGSTER), "dev", "-w", "workspace.yaml", "-p", str(free_port())],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        staged = write_extract(
            generate_customers(ROWS, seed=21).drop(columns="C_seg"), tmp_path / "etb week 1.csv"
        )
        os.replace(staged, landing / staged.name)  # lands whole, as a finished copy would
        scored = wait_for(
            lambda: (
                count_rows(
                    warehouse,
                    "select count(*) from batch_scores where source_file = ?",
                    [staged.name],
                )
                == ROWS
            ),
            "the dropped file's scores in DuckDB",
            server,
            log,
        )
        assert scored
        candidates = count_rows(warehouse, "select count(*) from latest_candidates", [])
        assert candidates and candidates > 0

        (landing / "broken.csv").write_text("C_ID,C_AGE\n1,forty\n")
        reason = quarantine / "broken.csv.reason.txt"
        wait_for(reason.exists, "the bad file in quarantine", server, log)
        assert "broken.csv" in reason.read_text()
        assert not (landing / "broken.csv").exists()
        assert count_rows(warehouse, "select count(*) from batch_scores", []) == ROWS
    finally:
        stop(server)
