"""Spare run workers (affluent_assets/spare_worker.py, LocalRunLauncher): a run handed to a
process that loaded the code ahead runs as Dagster's own run worker would, on the code as it is
when the run starts, can be terminated, and is reported gone when its process dies."""

import os
import signal
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.launcher.base import LaunchRunContext, WorkerStatus

from affluent_assets.instance import RUN_WORKER_TAG, LocalRunLauncher

LAUNCHER = {"module": "affluent_assets.instance", "class": "LocalRunLauncher"}

CODE = """
import time
import dagster as dg

VALUE = {value}


@dg.op(config_schema={{"out": str, "sleep": float}})
def answer(context):
    time.sleep(context.op_config["sleep"])
    with open(context.op_config["out"], "w") as out:
        out.write(f"{{VALUE}} {{__import__('os').getpid()}}")


@dg.job(executor_def=dg.in_process_executor)  # as landing_job: steps in the run worker
def answer_job():
    answer()


defs = dg.Definitions(jobs=[answer_job])
"""


def _write_code(folder: Path, value: int) -> None:
    (folder / "spare_code.py").write_text(textwrap.dedent(CODE.format(value=value)))


@pytest.fixture
def stores(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    _write_code(code, 1)
    (tmp_path / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(
        str(tmp_path / "home"),
        overrides={"run_launcher": LAUNCHER},
    )
    yield instance, code
    instance.run_launcher.dispose()
    for run in instance.get_runs():
        if not run.is_finished:  # a test that failed midway: stop its worker
            instance.run_launcher.terminate(run.run_id)
    instance.dispose()


def _run(instance, code: Path, out: Path, sleep: float = 0.0) -> dg.DagsterRun:
    repository = ReconstructableRepository.for_file(
        str(code / "spare_code.py"), "defs", working_directory=str(code)
    )
    job = repository.get_reconstructable_job("answer_job")
    return instance.create_run_for_job(
        job.get_definition(),
        run_config={"ops": {"answer": {"config": {"out": str(out), "sleep": sleep}}}},
        job_code_origin=job.get_python_origin(),
        status=dg.DagsterRunStatus.NOT_STARTED,
    )


def _wait(instance, run_id: str, done, timeout: float = 90.0) -> dg.DagsterRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        if done(run):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still {instance.get_run_by_id(run_id).status}")


def _launch(instance, run: dg.DagsterRun) -> None:
    instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))


def _start_spare(launcher, run) -> None:
    """Start the spare for the code location and wait until it has loaded the code."""
    assert launcher.spares.take(run) is None  # none yet: this starts one
    deadline = time.monotonic() + 60
    while not all(spare.loaded() for spare in launcher.spares.idle()):
        assert time.monotonic() < deadline, "the spare did not load the code"
        time.sleep(0.1)


def _finished(run) -> bool:
    return run.is_finished


def _worker_recorded(instance):
    return lambda run: instance.run_launcher._worker_start(run) is not None


def test_the_first_run_starts_the_usual_way_and_the_next_on_the_spare(stores, tmp_path):
    instance, code = stores
    launcher = instance.run_launcher
    assert isinstance(launcher, LocalRunLauncher)
    first = _run(instance, code, tmp_path / "first.txt")
    assert not launcher.spares.take(first)  # no spare yet: one is started
    second = _run(instance, code, tmp_path / "second.txt")
    _launch(instance, second)
    run = _wait(instance, second.run_id, _finished)
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags[RUN_WORKER_TAG] == "spare"
    value, pid = (tmp_path / "second.txt").read_text().split()
    assert value == "1" and int(pid) != os.getpid()
    assert launcher._worker_start(run)[0] == int(pid)  # run monitoring sees the worker


def test_a_spare_started_before_a_code_change_runs_the_new_code(stores, tmp_path, capfd):
    instance, code = stores
    launcher = instance.run_launcher
    _start_spare(launcher, _run(instance, code, tmp_path / "unused.txt"))
    _write_code(code, 2)
    changed = _run(instance, code, tmp_path / "changed.txt")
    _launch(instance, changed)
    run = _wait(instance, changed.run_id, _finished)
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert (tmp_path / "changed.txt").read_text().split()[0] == "2"
    assert "spare_code.py); running the run in a fresh process" in capfd.readouterr().err


def _slow_run_on_a_spare(instance, code: Path, tmp_path: Path) -> dg.DagsterRun:
    """A run of two minutes, on a spare, once it has started and recorded its process."""
    _start_spare(instance.run_launcher, _run(instance, code, tmp_path / "unused.txt"))
    slow = _run(instance, code, tmp_path / "slow.txt", sleep=120)
    _launch(instance, slow)
    _wait(instance, slow.run_id, lambda run: run.status == dg.DagsterRunStatus.STARTED)
    return _wait(instance, slow.run_id, _worker_recorded(instance))


def test_a_run_on_a_spare_is_terminated_by_its_process(stores, tmp_path):
    instance, code = stores
    launcher = instance.run_launcher
    slow = _slow_run_on_a_spare(instance, code, tmp_path)
    assert launcher.terminate(slow.run_id)
    run = _wait(instance, slow.run_id, _finished, timeout=60)
    assert run.status == dg.DagsterRunStatus.CANCELED
    assert not (tmp_path / "slow.txt").exists()


def test_a_spare_run_whose_process_died_is_reported_gone(stores, tmp_path):
    instance, code = stores
    launcher = instance.run_launcher
    run = _slow_run_on_a_spare(instance, code, tmp_path)
    pid, _ = launcher._worker_start(run)
    assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING:
        assert time.monotonic() < deadline, "a killed worker is still reported running"
        time.sleep(0.1)
    assert launcher.check_run_worker_health(run).status == WorkerStatus.NOT_FOUND


def test_without_a_spare_a_launch_goes_to_the_code_server(stores, tmp_path):
    instance, code = stores
    run = _run(instance, code, tmp_path / "out.txt")
    off = LocalRunLauncher(spare_worker=False)
    off.register_instance(instance)
    # No code server in this context: the usual launch is the one that was tried.
    with pytest.raises(dg.DagsterInvariantViolationError, match="requires a workspace"):
        off.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    assert instance.get_run_by_id(run.run_id).tags[RUN_WORKER_TAG] == "code server"


def test_a_burst_never_has_more_than_one_spare_loading(stores, tmp_path):
    """A run given to a spare still loading the code does not start another spare: on two
    cores, a burst would otherwise load the code three times at once."""
    instance, code = stores
    spares = instance.run_launcher.spares
    runs = [_run(instance, code, tmp_path / f"{i}.txt") for i in range(3)]
    assert spares.take(runs[0]) is None  # starts the first spare
    loading = spares.take(runs[1])
    assert loading is not None and not loading.loaded()
    assert spares.idle() == []  # no second spare while that one loads
    assert spares.give(loading, instance, runs[1])
    assert spares.take(runs[2]) is None  # so this one starts the usual way
    assert _wait(instance, runs[1].run_id, _finished).status == dg.DagsterRunStatus.SUCCESS


def test_a_code_location_that_does_not_load_fails_its_run_not_hangs_it(stores, tmp_path):
    """A spare that cannot load the code hands its run to a fresh run worker, which records
    why the run failed, instead of leaving it STARTING until run monitoring's timeout."""
    instance, code = stores
    launcher = instance.run_launcher
    runs = [_run(instance, code, tmp_path / f"{i}.txt") for i in range(2)]
    (code / "spare_code.py").write_text("import dagster as dg\n\nthis is not Python\n")
    assert launcher.spares.take(runs[0]) is None  # starts a spare on the broken code
    _launch(instance, runs[1])
    run = _wait(instance, runs[1].run_id, _finished)
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert not (tmp_path / "1.txt").exists()
