"""The Dagster instance on PostgreSQL: with DAGSTER_PG_URL set, `make` points DAGSTER_HOME at
.dagster_home/postgres/, whose runs, event logs and schedules live in a real PostgreSQL server
started here (Debian's `postgresql` package, as the `postgres` user)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg2
import yaml

from affluent_assets.lib.demo_data import generate_customers
from affluent_assets.lib.demo_files import write_extract
from affluent_assets.lib.landing import batch_key_for_path

REPO = Path(__file__).resolve().parents[2]
SQLITE_SETTINGS = REPO / ".dagster_home" / "dagster.yaml"
POSTGRES_SETTINGS = REPO / ".dagster_home" / "postgres" / "dagster.yaml"


def test_postgres_settings_differ_from_the_default_only_in_storage():
    default = yaml.safe_load(SQLITE_SETTINGS.read_text())
    postgres = yaml.safe_load(POSTGRES_SETTINGS.read_text())
    assert postgres.pop("storage") == {"postgres": {"postgres_url": {"env": "DAGSTER_PG_URL"}}}
    assert "storage" not in default and postgres == default


def _make_variable(name: str, **env: str) -> str:
    """The value `make` gives a variable (its database, printed without running anything)."""
    base = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "DAGSTER_PG_URL")}
    printed = subprocess.run(
        ["make", "-s", "-n", "-p", "-f", "Makefile", "lint"],
        cwd=REPO, env={**base, **env}, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    lines = [line for line in printed.splitlines() if line.startswith(f"{name} = ")]
    assert lines, f"make has no variable {name}"
    return lines[-1].split(" = ", 1)[1].replace("$(CURDIR)", str(REPO))


def test_make_uses_the_postgres_instance_only_when_dagster_pg_url_is_set():
    assert _make_variable("DAGSTER_HOME") == str(REPO / ".dagster_home")
    with_pg = _make_variable("DAGSTER_HOME", DAGSTER_PG_URL="postgresql://x@localhost/dagster")
    assert with_pg == str(POSTGRES_SETTINGS.parent)


def test_a_landing_run_is_kept_in_postgres(postgres, landing_stores, tmp_path, monkeypatch):
    url = postgres.create_database("dagster_landing")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(POSTGRES_SETTINGS, home / "dagster.yaml")
    path = write_extract(generate_customers(400, seed=41).drop(columns="C_seg"), tmp_path / "w.csv")
    done = subprocess.run(
        [sys.executable, "-m", "affluent_assets.cli", "score", str(path), "--top", "0"],
        env={
            **os.environ,
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_URL": url,
            "MLFLOW_TRACKING_URI": landing_stores.models.tracking_uri,
        },
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # Nothing of the instance was written to the home folder's SQLite files ...
    assert not list(home.rglob("*.db"))
    # ... the run, its events and the partition are in PostgreSQL.
    with psycopg2.connect(url) as con, con.cursor() as cursor:
        cursor.execute("select pipeline_name, status from runs")
        assert cursor.fetchall() == [("landing_job", "SUCCESS")]
        cursor.execute(
            "select count(*) from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION'"
        )
        assert cursor.fetchone()[0] == 2  # batch_scores and batch_candidates
        cursor.execute("select to_regclass('jobs'), to_regclass('job_ticks')")
        assert all(cursor.fetchone())  # schedule and sensor state lives here too
    monkeypatch.setenv("DAGSTER_PG_URL", url)
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        run = instance.get_runs()[0]
        assert run.is_success and run.tags["affluent/landing_file"] == "w.csv"
        # Scored from outside the landing folder: the batch is named by file and folder
        # (docs/landing.md, what makes two files the same batch).
        key = batch_key_for_path(path, tmp_path / "not-the-landing-folder")
        assert instance.get_dynamic_partitions("landed_batches") == [key]
    finally:
        instance.dispose()
