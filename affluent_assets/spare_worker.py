"""Run workers started before their runs: the launcher's pool (`SpareWorkers`) and the process
itself (`python -m affluent_assets.spare_worker POINTER FD`).

A landing file's run spends most of its seconds before its first step: a new process imports
Dagster and loads the code location (about 4.5 s here), then scores a few thousand rows in about
one. LocalRunLauncher (instance.py) therefore keeps one process that has done that work already,
waiting on its standard input, and hands it the next run: the run starts in a fraction of a
second, and the launcher starts the next spare.

Given a run (Dagster's `ExecuteRunArgs`, serialized, one line), the spare runs it exactly as
`dagster api execute_run` does (that command's own code), so the run reports its process, its
events and its end the same way. If any of the code location's source files changed after the
spare loaded them (a reload in `dagster dev`), the spare replaces itself with a fresh `dagster
api execute_run` process (same process id), so a run never executes code older than its launch.
An end of input (the launcher's process is gone) ends the spare.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagster import DagsterInstance, DagsterRun


@dataclass
class Spare:
    """A spare's process and the pipe on which it says, with one byte, that it has loaded the
    code (not its standard output: a run may print more than a pipe holds)."""

    process: subprocess.Popen
    loaded_fd: int

    @classmethod
    def start(cls, executable: str, pointer: str) -> Spare:
        read_fd, write_fd = os.pipe()
        try:
            process = subprocess.Popen(
                [executable or sys.executable, "-m", __name__, pointer, str(write_fd)],
                stdin=subprocess.PIPE,
                text=True,
                pass_fds=(write_fd,),
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        return cls(process, read_fd)

    def loaded(self) -> bool:
        readable, _, _ = select.select([self.loaded_fd], [], [], 0)
        return bool(readable)

    def alive(self) -> bool:
        return self.process.poll() is None

    def hand(self, serialized_args: str) -> bool:
        """Give it its run; False when it ended before it could take one."""
        os.close(self.loaded_fd)
        try:
            self.process.stdin.write(serialized_args + "\n")
            self.process.stdin.close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        os.close(self.loaded_fd)
        self.process.kill()
        self.process.wait()


class SpareWorkers:
    """The launcher's side: at most one spare per code location (its Python and its code
    pointer), and the processes handed runs, kept until they end so they are reaped."""

    def __init__(self):
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, str], Spare] = {}
        self._running: list[subprocess.Popen] = []

    def hand_over(self, instance: DagsterInstance, run: DagsterRun) -> bool:
        """Give `run` to the spare for its code location if one is alive; False when the run
        must start the usual way. The next spare is started unless the one given the run was
        still loading: a burst of runs then has at most two processes loading the code at once
        (that spare and the usual way's), not one more on two cores."""
        from dagster._grpc.types import ExecuteRunArgs
        from dagster._serdes import serialize_value

        origin = run.job_code_origin
        if origin is None:
            return False
        repository = origin.repository_origin
        key = (repository.executable_path, serialize_value(repository.code_pointer))
        args = ExecuteRunArgs(job_origin=origin, run_id=run.run_id, instance_ref=instance.get_ref())
        with self._lock:
            self.reap()
            spare = self._idle.pop(key, None)
            if spare is not None and not spare.alive():
                spare.stop()
                spare = None
            if spare is None or spare.loaded():
                self._idle[key] = Spare.start(*key)
            if spare is None or not spare.hand(serialize_value(args)):
                return False
            self._running.append(spare.process)
            return True

    def reap(self) -> None:
        self._running = [p for p in self._running if p.poll() is None]

    def close(self) -> None:
        with self._lock:
            for spare in self._idle.values():
                spare.stop()
            self._idle.clear()


def user_code_files() -> list[str]:
    """The source files of the modules loaded so far that are neither Python's nor an
    installed package's: the code location's own."""
    installed = {Path(p).resolve() for p in {sys.prefix, sys.base_prefix, sys.exec_prefix}}
    files = []
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if not name or not name.endswith(".py"):
            continue
        path = Path(name).resolve()
        if not any(path.is_relative_to(root) for root in installed):
            files.append(str(path))
    return files


def changed_files(files: list[str], since_ns: int) -> list[str]:
    """Which of `files` were modified (or removed) after `since_ns`, when the spare began
    loading them: a file changed during the load counts as changed."""
    changed = []
    for name in files:
        try:
            if os.stat(name).st_mtime_ns > since_ns:
                changed.append(name)
        except OSError:
            changed.append(name)
    return changed


def _execute_run(serialized_args: str) -> None:
    """Dagster's `dagster api execute_run` on these arguments (it exits the process)."""
    from dagster._cli.api import api_cli

    api_cli.main(["execute_run", serialized_args], prog_name="dagster api")


def main(argv: list[str]) -> int:
    """argv: the code pointer (serialized) and the pipe to write one byte to once loaded."""
    started_ns = time.time_ns()
    from dagster._cli.api import api_cli  # noqa: F401  (Dagster's run-worker code, loaded now)
    from dagster._core.code_pointer import CodePointer
    from dagster._serdes import deserialize_value

    deserialize_value(argv[0], CodePointer).load_target()
    loaded = user_code_files()
    with contextlib.suppress(BrokenPipeError):  # given its run while it loaded: nobody asks
        os.write(int(argv[1]), b"1")
    os.close(int(argv[1]))
    line = sys.stdin.readline().strip()
    if not line:
        return 0  # the launcher stopped before it had a run for this spare
    changed = changed_files(loaded, started_ns)
    if changed:
        print(
            f"spare run worker {os.getpid()}: {len(changed)} source file(s) changed since it "
            f"loaded them ({changed[0]}); running the run in a fresh process",
            file=sys.stderr,
            flush=True,
        )
        os.execv(sys.executable, [sys.executable, "-m", "dagster", "api", "execute_run", line])
    _execute_run(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
