"""The instance settings `make dev`, `make run` and the image use: parallel landing runs, never
two runs of one file, the main graph alone, DuckDB writers one at a time."""

import shutil
from pathlib import Path

import dagster as dg

from affluent_assets.definitions import affluent_job
from affluent_assets.defs.landing.sensors import LANDING_FILE_TAG

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
