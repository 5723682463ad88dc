"""A crash, with the real processes and nobody touching anything: `dagster dev` is killed with
SIGKILL (its whole process group, run worker included) while a large landing file is being
scored, then started again. Run monitoring fails the dead run, run retries score the file again,
and a file dropped after the restart is scored too: exact row counts, no duplicates."""

import os
import signal
import time

import dagster as dg

from affluent_assets.lib.demo_data import generate_customers, write_demo_csv
from affluent_assets.lib.demo_files import write_extract
from affluent_assets.lib.landing import batch_key_for
from affluent_assets_tests.defs.conftest import register_tiny_model
from affluent_assets_tests.servers import DagsterStores, count_rows, stop, wait_for

BIG_ROWS = 600_000
SMALL_ROWS = 1_500
ROWS_OF_FILE = "select count(*) from batch_scores where source_file = ?"


def staging_started(stores: DagsterStores, name: str) -> bool:
    """The landing run has opened the file and is writing its staged chunks."""
    return any((stores.lake / "_staging" / batch_key_for(name)).glob("*"))


def exact(stores: DagsterStores, name: str, rows: int) -> bool:
    return count_rows(stores.warehouse, ROWS_OF_FILE, [name]) == rows


def runs_finished(stores: DagsterStores) -> bool:
    instance = dg.DagsterInstance.from_config(str(stores.home))
    try:
        runs = instance.get_runs()
        return len(runs) >= 3 and all(run.is_finished for run in runs)
    finally:
        instance.dispose()


def test_a_killed_dev_server_recovers_and_scores_everything(tmp_path):
    models = register_tiny_model(tmp_path / "mlflow")
    stores = DagsterStores(tmp_path, models.tracking_uri, models.artifact_root)
    big = write_demo_csv(tmp_path / "big branch.csv", BIG_ROWS, seed=5)
    log = tmp_path / "dagster-dev.log"
    timeline: dict[str, float] = {}
    server = stores.start(log)
    try:
        started = time.monotonic()
        os.replace(big, stores.landing / big.name)
        wait_for(lambda: staging_started(stores, big.name), "the big file's run", server, log)
        timeline["scoring"] = time.monotonic() - started
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        timeline["killed"] = time.monotonic() - started
        assert not exact(stores, big.name, BIG_ROWS)  # killed before it was published

        server = stores.start(log)
        timeline["restarted"] = time.monotonic() - started
        small = write_extract(
            generate_customers(SMALL_ROWS, seed=6).drop(columns="C_seg"), tmp_path / "later.csv"
        )
        os.replace(small, stores.landing / small.name)
        wait_for(
            lambda: exact(stores, big.name, BIG_ROWS) and exact(stores, small.name, SMALL_ROWS),
            "both files scored after the restart",
            server,
            log,
            seconds=420,
        )
        timeline["both_scored"] = time.monotonic() - started
        # Let the runs finish explaining their candidates before dagster dev is stopped.
        wait_for(lambda: runs_finished(stores), "the runs to finish", server, log)
    finally:
        stop(server)
    print("crash timeline (s after the drop):", {k: round(v, 1) for k, v in timeline.items()})

    distinct = count_rows(
        stores.warehouse, "select count(distinct customer_key) from batch_scores", []
    )
    assert distinct == BIG_ROWS + SMALL_ROWS  # nothing counted twice
    instance = dg.DagsterInstance.from_config(str(stores.home))
    runs = {run.run_id: run for run in instance.get_runs()}
    big_runs = [r for r in runs.values() if r.tags.get("affluent/landing_file") == big.name]
    failed = [r for r in big_runs if r.status == dg.DagsterRunStatus.FAILURE]
    retried = [r for r in big_runs if r.status == dg.DagsterRunStatus.SUCCESS]
    assert len(failed) == 1 and len(retried) == 1, [(r.run_id, r.status) for r in big_runs]
    assert retried[0].tags.get("dagster/parent_run_id") == failed[0].run_id
    failure = instance.get_records_for_run(
        failed[0].run_id, of_type=dg.DagsterEventType.RUN_FAILURE
    ).records
    assert "is gone" in failure[0].event_log_entry.dagster_event.message
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs.values() if r not in failed)
