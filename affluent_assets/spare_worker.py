"""A run worker started before its run (`python -m affluent_assets.spare_worker POINTER`).

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

import os
import sys
import time
from pathlib import Path


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
    started_ns = time.time_ns()
    from dagster._cli.api import api_cli  # noqa: F401  (Dagster's run-worker code, loaded now)
    from dagster._core.code_pointer import CodePointer
    from dagster._serdes import deserialize_value

    deserialize_value(argv[0], CodePointer).load_target()
    loaded = user_code_files()
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
