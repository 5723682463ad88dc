"""A crash, with the real processes and nobody touching anything: `dagster dev` is killed with
SIGKILL (its whole process group, run worker included) in the middle of a group of files that
landed together (a small one already published, a large one being scored, a small one not yet
started), then started again. Run monitoring fails the dead run, run retries score the group
again, and a file dropped after the restart is scored too: every file once, exact row counts,
no duplicates."""

import os
import signal
import time

import dagster as dg

from affluent_assets.lib.demo_data import generate_customers, write_demo_csv
from affluent_assets.lib.demo_files import write_extract
from affluent_assets.lib.landing import batch_key_for, run_batches
from affluent_assets_tests.defs.conftest import register_tiny_model
from affluent_assets_tests.servers import DagsterStores, count_rows, stop, wait_for

BIG_ROWS = 600_000
SMALL_ROWS = 1_500
GROUP_ROWS = {"a first.csv": 1_200, "big branch.csv": BIG_ROWS, "z last.csv": 900}
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


def all_exact(stores: DagsterStores, rows: dict[str, int]) -> bool:
    return all(exact(stores, name, n) for name, n in rows.items())


def test_a_killed_dev_server_recovers_and_scores_everything(tmp_path, monkeypatch):
    # The large file joins the small ones' run, so the crash comes in the middle of a group.
    monkeypatch.setenv("AFFLUENT_LANDING_GROUP_MAX_MB", "1000")
    models = register_tiny_model(tmp_path / "mlflow")
    stores = DagsterStores(tmp_path, models.tracking_uri, models.artifact_root)
    staged = [
        write_demo_csv(tmp_path / name, rows, seed=5 + i)
        for i, (name, rows) in enumerate(GROUP_ROWS.items())
    ]
    big = tmp_path / "big branch.csv"
    log = tmp_path / "dagster-dev.log"
    timeline: dict[str, float] = {}
    server = stores.start(log)
    try:
        started = time.monotonic()
        for path in staged:  # together: one tick sees them all
            os.replace(path, stores.landing / path.name)
        wait_for(lambda: staging_started(stores, big.name), "the big file's run", server, log)
        timeline["scoring"] = time.monotonic() - started
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        timeline["killed"] = time.monotonic() - started
        assert exact(stores, "a first.csv", GROUP_ROWS["a first.csv"])  # published before
        assert not exact(stores, big.name, BIG_ROWS)  # killed before it was published
        assert not exact(stores, "z last.csv", GROUP_ROWS["z last.csv"])  # not started

        server = stores.start(log)
        timeline["restarted"] = time.monotonic() - started
        small = write_extract(
            generate_customers(SMALL_ROWS, seed=6).drop(columns="C_seg"), tmp_path / "later.csv"
        )
        os.replace(small, stores.landing / small.name)
        wait_for(
            lambda: all_exact(stores, {**GROUP_ROWS, small.name: SMALL_ROWS}),
            "every file scored after the restart",
            server,
            log,
            seconds=420,
        )
        timeline["all_scored"] = time.monotonic() - started
        # Let the runs finish explaining their candidates before dagster dev is stopped.
        wait_for(lambda: runs_finished(stores), "the runs to finish", server, log)
    finally:
        stop(server)
    print("crash timeline (s after the drop):", {k: round(v, 1) for k, v in timeline.items()})

    distinct = count_rows(
        stores.warehouse, "select count(distinct customer_key) from batch_scores", []
    )
    assert distinct == sum(GROUP_ROWS.values()) + SMALL_ROWS  # nothing counted twice
    instance = dg.DagsterInstance.from_config(str(stores.home))
    runs = {run.run_id: run for run in instance.get_runs()}
    group_runs = [
        r for r in runs.values() if batch_key_for(big.name) in run_batches(r.tags, r.run_config)
    ]
    failed = [r for r in group_runs if r.status == dg.DagsterRunStatus.FAILURE]
    retried = [r for r in group_runs if r.status == dg.DagsterRunStatus.SUCCESS]
    assert len(failed) == 1 and len(retried) == 1, [(r.run_id, r.status) for r in group_runs]
    assert retried[0].tags.get("dagster/parent_run_id") == failed[0].run_id
    assert sorted(run_batches(retried[0].tags, retried[0].run_config).values()) == sorted(
        GROUP_ROWS
    )
    failure = instance.get_records_for_run(
        failed[0].run_id, of_type=dg.DagsterEventType.RUN_FAILURE
    ).records
    assert "is gone" in failure[0].event_log_entry.dagster_event.message
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs.values() if r not in failed)
