"""Instance plumbing named in `.dagster_home/dagster.yaml`: the run launcher `make dev`, `make
run` and the image use.

Dagster's DefaultRunLauncher starts each run as a process on this machine but cannot tell run
monitoring whether that process is still alive, so a run whose process died (the machine or
`dagster dev` was killed) stays STARTED forever, and its file is never scored. This launcher
answers that question from the process id the run recorded when it started, so run monitoring
fails such a run within a poll interval of the daemon coming back, and run retries start it
again. (On Kubernetes, dagster-k8s' K8sRunLauncher answers it from the pod.)

It also keeps a spare run worker (spare_worker.py): a process that has imported Dagster and the
code location already and waits for a run. A run is handed to it, and the next spare is started
at once; only when there is no live spare does a run start the usual way, through the code
server. `spare_worker: false` in dagster.yaml turns this off.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from dagster import DagsterEventType, DagsterRun, DefaultRunLauncher, Field
from dagster._core.launcher.base import CheckRunHealthResult, LaunchRunContext, WorkerStatus

from affluent_assets.spare_worker import SpareWorkers

# Which process runs a run: "spare" (terminated by a signal to its process) or "code server"
# (the process the code server starts, terminated by asking the code server).
RUN_WORKER_TAG = "affluent/run_worker"

# A process may start a little after the event naming it is stored; a process that started
# later than this after the event is another process that reused the id.
_START_SLACK_SECONDS = 5.0


class LocalRunLauncher(DefaultRunLauncher):
    """DefaultRunLauncher whose run workers' health run monitoring can check (same machine),
    and whose runs start on a spare worker that has loaded the code already."""

    def __init__(self, inst_data=None, spare_worker: bool = True):
        super().__init__(inst_data=inst_data)
        self._spare_worker = spare_worker
        self.spares = SpareWorkers()

    @classmethod
    def config_type(cls):
        return {
            "spare_worker": Field(
                bool,
                is_required=False,
                default_value=True,
                description="Keep one run worker started ahead, with the code loaded.",
            )
        }

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data, spare_worker=config_value.get("spare_worker", True))

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        spare = self.spares.take(run) if self._spare_worker else None
        # Tagged before it starts, as Dagster's launcher tags a run with its code server: the
        # tag says how the run is terminated.
        self._instance.add_run_tags(
            run.run_id, {RUN_WORKER_TAG: "spare" if spare else "code server"}
        )
        if spare is not None:
            if self.spares.give(spare, self._instance, run):
                self._run_ids.add(run.run_id)
                return
            self._instance.add_run_tags(run.run_id, {RUN_WORKER_TAG: "code server"})
        super().launch_run(context)

    def terminate(self, run_id: str) -> bool:
        """A spare worker's run is interrupted as the code server would interrupt its own run
        process: SIGINT, which Dagster turns into the run's cancellation."""
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished or run.tags.get(RUN_WORKER_TAG) != "spare":
            return super().terminate(run_id)
        self._instance.report_run_canceling(run)
        started = self._worker_start(run)
        if started is None or not worker_alive(*started):
            return False
        os.kill(started[0], signal.SIGINT)
        return True

    def dispose(self) -> None:
        self.spares.close()
        super().dispose()

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        self.spares.reap()  # a finished spare's run worker is gone, not a zombie
        started = self._worker_start(run)
        if started is None:  # the run has not recorded its process yet: nothing to judge
            return CheckRunHealthResult(WorkerStatus.RUNNING, "run worker not recorded yet")
        pid, recorded_at = started
        if worker_alive(pid, recorded_at):
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(
            WorkerStatus.NOT_FOUND,
            f"run worker process {pid} is gone (the machine or `dagster dev` stopped under it)",
        )

    def _worker_start(self, run: DagsterRun) -> tuple[int, float] | None:
        """The process id of the run's worker and when it was recorded, from the engine event
        Dagster stores when it starts a run process."""
        records = self._instance.get_records_for_run(
            run.run_id, of_type=DagsterEventType.ENGINE_EVENT, limit=50
        ).records
        for record in records:
            event = record.event_log_entry.dagster_event
            data = event.engine_event_data if event is not None else None
            if data is not None and data.metadata.get("pid") is not None:
                return int(data.metadata["pid"].value), record.event_log_entry.timestamp
        return None


def worker_alive(pid: int, recorded_at: float) -> bool:
    """Whether process `pid` exists, is the one recorded at `recorded_at` (not a later
    process that reused the id) and has not ended (a zombie not yet waited for)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    stat = _process_stat(pid)
    if stat is None:
        return True  # no /proc to read: it exists, which is all that can be told
    state, started = stat
    return state != "Z" and started <= recorded_at + _START_SLACK_SECONDS


def process_start_time(pid: int) -> float | None:
    """Unix time the process started (Linux /proc); None where that cannot be read."""
    stat = _process_stat(pid)
    return None if stat is None else stat[1]


def _process_stat(pid: int) -> tuple[str, float] | None:
    """The process's state letter and start time (Unix) from Linux /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration, ValueError):
        return None
    # After the command name's ")": field 3 (state), ..., field 22 (starttime, clock ticks).
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0], boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def current_instance():
    """The Dagster instance a command runs in: the one in DAGSTER_HOME (as `make` sets it, so
    the run shows in the UI afterwards), or a throwaway one in memory without it."""
    import dagster as dg

    return (
        dg.DagsterInstance.get()
        if os.environ.get("DAGSTER_HOME")
        else dg.DagsterInstance.ephemeral()
    )
