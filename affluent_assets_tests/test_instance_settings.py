"""The instance settings `make dev`, `make run` and the image use: parallel landing runs, never
two runs of one file, the main graph alone, DuckDB writers one at a time, crash recovery."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from affluent_assets.definitions import affluent_job
from affluent_assets.instance import LocalRunLauncher, process_start_time, worker_alive
from affluent_assets.names import LANDING_FILE_TAG

SETTINGS = Path(__file__).resolve().parent.parent / ".dagster_home" / "dagster.yaml"


def test_instance_runs_landing_files_in_parallel_one_run_per_file(tmp_path):
    shutil.copy(SETTINGS, tmp_path / "dagster.yaml")
    config = dg.DagsterInstance.from_config(str(tmp_path)).get_concurrency_config()
    queue = config.run_queue_config
    assert queue.max_concurrent_runs == 4
    limits = {limit["key"]: limit for limit in queue.tag_concurrency_limits}
    per_file = limits[LANDING_FILE_TAG]
    assert per_file["value"] == {"applyLimitPerUniqueValue": True} and per_file["limit"] == 1
    main = limits["affluent/graph"]
    assert affluent_job.tags["affluent/graph"] == main["value"] and main["limit"] == 1
    assert config.pool_config.default_pool_limit == 1


def test_instance_recovers_from_crashes_without_a_person(tmp_path):
    shutil.copy(SETTINGS, tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    assert isinstance(instance.run_launcher, LocalRunLauncher)
    assert instance.run_launcher.supports_check_run_worker_health
    assert instance.run_monitoring_enabled and instance.run_monitoring_max_resume_run_attempts == 0
    assert instance.run_monitoring_settings["poll_interval_seconds"] <= 30
    assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
    assert not instance.run_retries_retry_on_asset_or_op_failure  # a bad file is not retried


def test_a_run_worker_is_alive_only_while_its_own_process_runs():
    now = time.time()
    assert worker_alive(os.getpid(), now)
    assert abs(process_start_time(os.getpid()) - now) < 3600 * 24 * 365
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    assert not worker_alive(finished.pid, now)
    # A live process that started after the run recorded its pid reused that pid: not the worker.
    assert not worker_alive(os.getpid(), process_start_time(os.getpid()) - 60)
    # A process that has ended but was not waited for yet (a zombie) is not alive either.
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    while Path(f"/proc/{ended.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.05)
    assert not worker_alive(ended.pid, now)
    ended.wait()


def test_instance_keeps_a_spare_run_worker(tmp_path):
    shutil.copy(SETTINGS, tmp_path / "dagster.yaml")
    launcher = dg.DagsterInstance.from_config(str(tmp_path)).run_launcher
    assert launcher.inst_data.config_dict == {"spare_worker": True}
    assert launcher._spare_worker
    sensors = dg.DagsterInstance.from_config(str(tmp_path)).get_settings("sensors")
    assert sensors["use_threads"]  # the landing sensor's watch holds up no other sensor
