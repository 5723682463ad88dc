"""Landed-batch results as Parquet files, one per batch and table, with DuckDB views over them.

A batch is written under the lake's staging folder and renamed into place when complete
(`publish`), so a reader sees a batch whole or not at all, and writers never take a lock:
several runs write at once, and an analyst's read-only query of the warehouse never waits for
or fails because of a landing run. The warehouse holds only the views (`create_views`), whose
SQL is in lib/sql/ (one file per view or macro, named for it).

    <lake>/batch_scores/<batch key>.parquet       every row of a batch, scored
    <lake>/batch_candidates/<batch key>.parquet   its candidates, with reasons
    <lake>/_staging/<batch key>/...               work in progress, never read by a view
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from affluent_assets.lib.warehouse import sql

SCORES = "batch_scores"
CANDIDATES = "batch_candidates"
LATEST_CANDIDATES = "latest_candidates"
# Every list a landed batch has had, one file per batch and run (append-only): a rescored or
# replaced batch keeps its earlier lists here.
CANDIDATE_HISTORY = "batch_candidate_history"
# Each batch's estimated precision and recall at the threshold and capacity cuts.
ESTIMATES = "batch_estimates"
TABLES = (SCORES, CANDIDATES, CANDIDATE_HISTORY, ESTIMATES)
# Batch keys never start with "_" (see landing.batch_key_for), so these names cannot collide.
STAGING = "_staging"
EMPTY_FILE = "_empty.parquet"


def table_dir(lake: str | Path, table: str) -> Path:
    return Path(lake).resolve() / table


def batch_file(lake: str | Path, table: str, batch_key: str) -> Path:
    return table_dir(lake, table) / f"{batch_key}.parquet"


STALE_STAGING_SECONDS = 6 * 3600


def staging_dir(lake: str | Path, batch_key: str) -> Path:
    """A fresh folder for one run's work on a batch, inside the lake so that `publish` is a
    rename on one file system. Work a killed run left for this batch more than six hours ago
    is removed (a live run of the same file is never that old: its tag allows one at a time)."""
    parent = Path(lake).resolve() / STAGING / batch_key
    if parent.is_dir():
        cutoff = time.time() - STALE_STAGING_SECONDS
        for old in parent.iterdir():
            if old.stat().st_mtime < cutoff:
                discard_staging(old)
    folder = parent / uuid.uuid4().hex
    try:
        folder.mkdir(parents=True)
    except FileNotFoundError:  # a run of another batch removed the empty parent meanwhile
        folder.mkdir(parents=True)
    return folder


def discard_staging(folder: Path) -> None:
    """Remove one run's work, and its batch's staging folder once no other run's work is in it
    (an empty folder per batch key would otherwise pile up, one for every file ever landed)."""
    shutil.rmtree(folder, ignore_errors=True)
    # OSError: another run of the batch still works there, or the folder is already gone.
    with contextlib.suppress(OSError):
        folder.parent.rmdir()


def publish(staged: Path, lake: str | Path, table: str, batch_key: str) -> Path:
    """Move a complete staged file into place: readers see the old file or the new, never half."""
    target = batch_file(lake, table, batch_key)
    target.parent.mkdir(parents=True, exist_ok=True)
    with staged.open("rb") as handle:
        os.fsync(handle.fileno())  # the data is on disk before the name points at it
    os.replace(staged, target)
    return target


def batch_model_versions(lake: str | Path) -> dict[str, str]:
    """Batch key -> the model version its scores were made with (read from each file's first
    rows, so this stays cheap however large the batches are)."""
    versions: dict[str, str] = {}
    folder = table_dir(lake, SCORES)
    if not folder.is_dir():
        return versions
    for path in sorted(folder.glob("*.parquet")):
        if path.name == EMPTY_FILE:
            continue
        parquet = pq.ParquetFile(path)
        if parquet.metadata.num_rows:
            column = parquet.read_row_group(0, columns=["model_version"]).column(0)
            versions[path.stem] = str(column[0].as_py())
    return versions


def keep_in_history(lake: str | Path, batch_key: str, run_id: str) -> Path:
    """Keep the batch's published list under `batch_candidate_history/` as
    `<batch key>__<run id>.parquet` (a hard link: no copy, and it appears whole)."""
    source = batch_file(lake, CANDIDATES, batch_key)
    target = table_dir(lake, CANDIDATE_HISTORY) / f"{batch_key}__{run_id}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        try:
            os.link(source, target)
        except OSError:  # a file system without hard links: copy, then rename into place
            staged = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
            shutil.copyfile(source, staged)
            os.replace(staged, target)
    return target


def ensure_placeholders(lake: str | Path, schemas: dict[str, pa.Schema]) -> None:
    """A zero-row file per table, so its view reads (as empty) before the first batch lands."""
    for table, schema in schemas.items():
        folder = table_dir(lake, table)
        folder.mkdir(parents=True, exist_ok=True)
        empty = folder / EMPTY_FILE
        if not empty.exists():
            staged = folder.parent / STAGING / f"{table}-{uuid.uuid4().hex}{EMPTY_FILE}"
            staged.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(schema.empty_table(), staged)
            os.replace(staged, empty)


@contextmanager
def views_lock(lake: str | Path) -> Iterator[None]:
    """Held while one process (re)creates the warehouse's views: runs that land together wait
    here, and all but the first then find the views current and never open the warehouse for
    writing (each opening would make analysts' read-only queries fail for a moment)."""
    folder = Path(lake)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".views.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _glob(lake: str | Path, table: str) -> str:
    return str(table_dir(lake, table) / "*.parquet").replace("'", "''")


def view_statements(lake: str | Path) -> dict[str, str]:
    """The views analysts query, by name, in the order they are created (`latest_candidates`
    reads two of the others). Each is `lib/sql/<name>.sql`; a view over the lake gets the glob
    of its table's files."""
    over_lake = (ESTIMATES, CANDIDATE_HISTORY, SCORES, CANDIDATES)
    statements = {name: sql(name).format(glob=_glob(lake, name)) for name in over_lake}
    return {**statements, LATEST_CANDIDATES: sql(LATEST_CANDIDATES)}


# Each landed batch's list as it stood at a time: the latest of its lists published by then.
CANDIDATES_AS_OF = "batch_candidates_as_of"
_AS_OF_MACRO = sql(CANDIDATES_AS_OF)


def views_current(con: duckdb.DuckDBPyConnection, lake: str | Path) -> bool:
    """Whether the warehouse's views already point at this lake (checked read-only, so a landing
    run opens the warehouse for writing only the first time)."""
    found = dict(con.execute("select view_name, sql from duckdb_views()").fetchall())
    macros = con.execute(
        "select count(*) from duckdb_functions() where function_name = ?", [CANDIDATES_AS_OF]
    ).fetchall()[0][0]
    return (
        bool(macros)
        and all(name in found for name in view_statements(lake))
        and all(_glob(lake, table) in found[table] for table in TABLES)
    )


def create_views(con: duckdb.DuckDBPyConnection, lake: str | Path) -> None:
    """(Re)create the views; tables of the same name from before the lake are dropped."""
    tables = {
        row[0]
        for row in con.execute(
            "select table_name from information_schema.tables"
            " where table_schema = 'main' and table_type = 'BASE TABLE'"
        ).fetchall()
    }
    con.execute("begin transaction")
    try:
        for name in (SCORES, CANDIDATES, LATEST_CANDIDATES, "landed_batch"):
            if name in tables:
                con.execute(f'drop table "{name}"')
        for statement in view_statements(lake).values():
            con.execute(statement)
        con.execute(_AS_OF_MACRO)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise


def batch_summary(lake: str | Path, batch_key: str) -> dict | None:
    """What the lake holds for a batch: rows, content hash, source file, model version and
    when it was scored (read from the scores file's metadata and first rows); None if nothing."""
    path = batch_file(lake, SCORES, batch_key)
    try:
        parquet = pq.ParquetFile(path)
    except FileNotFoundError:
        return None
    summary = {"rows": parquet.metadata.num_rows}
    if parquet.metadata.num_rows:
        names = ["content_hash", "source_file", "model_version", "scored_at"]
        present = [name for name in names if name in parquet.schema_arrow.names]
        first = parquet.read_row_group(0, columns=present).slice(0, 1).to_pylist()[0]
        summary.update(first)
    return summary


def scored_elsewhere(lake: str | Path, digest: str, batch_key: str) -> str | None:
    """The batch key that already holds scores of this exact content under another batch."""
    if not any(table_dir(lake, SCORES).glob("*.parquet")):
        return None
    with duckdb.connect() as con:
        found = con.execute(
            f"select batch_key from read_parquet('{_glob(lake, SCORES)}', union_by_name = true)"
            " where content_hash = ? and batch_key <> ? limit 1",
            [digest, batch_key],
        ).fetchall()
    return str(found[0][0]) if found else None
