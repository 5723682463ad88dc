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
import signal
import subprocess
import sys
import threading
import time
import traceback
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
    _loaded: bool = False

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
        """Whether it has loaded the code (a spare that failed to, or died, never says so)."""
        if not self._loaded:
            poller = select.poll()  # not select.select: a launcher's fds may pass 1024
            poller.register(self.loaded_fd, select.POLLIN)
            if poller.poll(0):
                self._loaded = os.read(self.loaded_fd, 1) == b"1"
        return self._loaded

    def alive(self) -> bool:
        return self.process.poll() is None

    def hand(self, serialized_args: str) -> bool:
        """Give it its run; False when it ended before it could take one."""
        os.close(self.loaded_fd)
        try:
            self.process.stdin.write(serialized_args + "\n")
            self.process.stdin.close()
        except OSError:
            self.process.wait()
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

    def take(self, run: DagsterRun) -> Spare | None:
        """The live spare for `run`'s code location (None: the run starts the usual way). The
        next spare is started unless the one taken was still loading: a burst of runs then has
        at most two processes loading the code at once (that spare and the usual way's), not
        one more on two cores."""
        from dagster._serdes import serialize_value

        if run.job_code_origin is None:
            return None
        repository = run.job_code_origin.repository_origin
        key = (repository.executable_path, serialize_value(repository.code_pointer))
        with self._lock:
            self._reap()
            spare = self._idle.pop(key, None)
            if spare is not None and not spare.alive():
                spare.stop()
                spare = None
            if spare is None or spare.loaded():
                with contextlib.suppress(OSError):  # no process to be had: the usual way
                    self._idle[key] = Spare.start(*key)
            return spare

    def give(self, spare: Spare, instance: DagsterInstance, run: DagsterRun) -> bool:
        """Hand `run` to `spare` (taken for it); False when it ended before it took the run."""
        from dagster._grpc.types import ExecuteRunArgs
        from dagster._serdes import serialize_value

        args = ExecuteRunArgs(
            job_origin=run.job_code_origin, run_id=run.run_id, instance_ref=instance.get_ref()
        )
        if not spare.hand(serialize_value(args)):
            return False
        with self._lock:
            self._running.append(spare.process)
        return True

    def idle(self) -> list[Spare]:
        with self._lock:
            return list(self._idle.values())

    def reap(self) -> None:
        """Wait for the processes handed runs that have ended, so none is left a zombie (whose
        pid would still look alive)."""
        with self._lock:
            self._reap()

    def _reap(self) -> None:
        self._running = [p for p in self._running if p.poll() is None]

    def close(self) -> None:
        with self._lock:
            for spare in self._idle.values():
                spare.stop()
            self._idle.clear()


def _is_code(path: Path) -> bool:
    """Not a compiled cache written at run time inside a package (bytecode, numba's index)."""
    return (
        path.is_file()
        and "__pycache__" not in path.parts
        and not path.name.endswith((".pyc", ".nbi", ".nbc"))
    )


def user_code_files() -> list[str]:
    """Every file of the packages (and single-file modules) loaded so far that are neither
    Python's nor installed: the code location's own, with the SQL or templates they read when
    imported."""
    installed = {Path(p).resolve() for p in {sys.prefix, sys.base_prefix, sys.exec_prefix}}
    roots = set()
    for name, module in list(sys.modules.items()):
        top = sys.modules.get(name.split(".")[0], module)
        path = getattr(top, "__file__", None) or getattr(module, "__file__", None)
        if not path or not path.endswith(".py"):
            continue
        path = Path(path).resolve()
        if any(path.is_relative_to(root) for root in installed):
            continue
        roots.add(path.parent if path.name == "__init__.py" else path)
    files = (p for root in roots for p in ([root] if root.is_file() else root.rglob("*")))
    return [str(path) for path in files if _is_code(path)]


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


def _execute_run_afresh(serialized_args: str) -> None:
    """The same in a new program in this process (same pid): code loaded from the files now."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # an ignored SIGINT would survive exec
    os.execv(
        sys.executable,
        [sys.executable, "-m", "dagster", "api", "execute_run", serialized_args],
    )


def _load(pointer: str) -> list[str] | None:
    """Load Dagster's run-worker code and the code location; the files to watch for change,
    or None when the code location does not load (its traceback goes to standard error)."""
    try:
        from dagster._cli.api import api_cli  # noqa: F401  (Dagster's run-worker code)
        from dagster._core.code_pointer import CodePointer
        from dagster._serdes import deserialize_value

        deserialize_value(pointer, CodePointer).load_target()
        return user_code_files()
    except Exception:
        traceback.print_exc()
        return None


def main(argv: list[str]) -> int:
    """argv: the code pointer (serialized) and the pipe to write one byte to once loaded.

    Until it has a run, a spare ignores SIGINT: Ctrl-C in a terminal reaches the whole process
    group, and a spare without a run ends by itself when its launcher does (end of input)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    started_ns = time.time_ns()
    loaded = _load(argv[0])
    if loaded is not None:
        with contextlib.suppress(BrokenPipeError):  # given its run while it loaded: nobody asks
            os.write(int(argv[1]), b"1")
    os.close(int(argv[1]))
    line = sys.stdin.readline().strip()
    if not line:
        return 0  # the launcher stopped before it had a run for this spare
    # Code that did not load is loaded again by a fresh worker (which, if it still fails, records
    # why in the run); code changed since it was loaded is loaded as it is now.
    changed = [] if loaded is None else changed_files(loaded, started_ns)
    if loaded is None or changed:
        why = (
            "the code location did not load"
            if loaded is None
            else f"{len(changed)} file(s) of the code changed since it loaded them ({changed[0]})"
        )
        print(
            f"spare run worker {os.getpid()}: {why}; running the run in a fresh process",
            file=sys.stderr,
            flush=True,
        )
        _execute_run_afresh(line)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _execute_run(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
