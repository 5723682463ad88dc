"""The lake: batches published whole by rename, views that read an empty lake, readers that
never fail while a batch is written, and duplicate content found across batches."""

import os
import subprocess
import sys
import textwrap
import time
from datetime import datetime

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from affluent_assets.lib import lake

SCHEMA = pa.schema(
    [
        ("batch_key", pa.string()),
        ("content_hash", pa.string()),
        ("run_id", pa.string()),
        ("customer_key", pa.string()),
        ("affluent_probability", pa.float64()),
        ("scored_at", pa.timestamp("us")),
    ]
)
SCHEMAS = {table: SCHEMA for table in lake.TABLES}


def stage(root, key: str, digest: str, rows: int, run_id: str = "r1"):
    staging = lake.staging_dir(root, key)
    path = staging / "scores.parquet"
    table = pa.table(
        {
            "batch_key": [key] * rows,
            "content_hash": [digest] * rows,
            "run_id": [run_id] * rows,
            "customer_key": [f"{key}-{i}" for i in range(rows)],
            "affluent_probability": [0.5] * rows,
            "scored_at": [datetime(2026, 12, 1)] * rows,
        },
        schema=SCHEMA,
    )
    pq.write_table(table, path)
    return path


@pytest.fixture
def warehouse(tmp_path):
    root = tmp_path / "lake"
    lake.ensure_placeholders(root, SCHEMAS)
    path = str(tmp_path / "w.duckdb")
    with duckdb.connect(path) as con:
        lake.create_views(con, root)
    return root, path


def count(path: str, sql: str) -> int:
    with duckdb.connect(path, read_only=True) as con:
        return con.execute(sql).fetchall()[0][0]


def test_views_read_an_empty_lake(warehouse):
    root, path = warehouse
    for view in (lake.SCORES, lake.CANDIDATES, lake.LATEST_CANDIDATES):
        assert count(path, f"select count(*) from {view}") == 0
    with duckdb.connect(path, read_only=True) as con:
        assert lake.views_current(con, root)
        assert not lake.views_current(con, root.parent / "elsewhere")


def test_published_batch_replaces_only_its_own_file(warehouse):
    root, path = warehouse
    lake.publish(stage(root, "a", "h1", 3), root, lake.SCORES, "a")
    lake.publish(stage(root, "b", "h2", 2), root, lake.SCORES, "b")
    lake.publish(stage(root, "a", "h3", 1), root, lake.SCORES, "a")
    assert count(path, "select count(*) from batch_scores") == 3
    assert count(path, "select count(*) from batch_scores where content_hash = 'h1'") == 0


def test_latest_candidates_only_with_scores_of_the_same_run(warehouse):
    root, path = warehouse
    lake.publish(stage(root, "a", "h1", 2, run_id="r1"), root, lake.SCORES, "a")
    lake.publish(stage(root, "a", "h1", 2, run_id="r1"), root, lake.CANDIDATES, "a")
    assert count(path, "select count(*) from latest_candidates") == 2
    # A rescoring run published its scores but not yet its candidates: none are shown.
    lake.publish(stage(root, "a", "h1", 2, run_id="r2"), root, lake.SCORES, "a")
    assert count(path, "select count(*) from latest_candidates") == 0


def test_scored_elsewhere_finds_the_same_content_in_another_batch(tmp_path):
    root = tmp_path / "lake"
    assert lake.scored_elsewhere(root, "h1", "b") is None
    lake.publish(stage(root, "a", "h1", 2), root, lake.SCORES, "a")
    assert lake.scored_elsewhere(root, "h1", "a") is None
    assert lake.scored_elsewhere(root, "h1", "b") == "a"
    assert lake.scored_elsewhere(root, "h2", "b") is None


def test_old_tables_of_the_same_name_give_way_to_views(tmp_path):
    path = str(tmp_path / "w.duckdb")
    with duckdb.connect(path) as con:
        con.execute("create table batch_scores as select 1 as x")
        con.execute("create table landed_batch as select 1 as x")
        lake.ensure_placeholders(tmp_path / "lake", SCHEMAS)
        lake.create_views(con, tmp_path / "lake")
        tables = con.execute("select table_name from duckdb_tables()").fetchall()
    assert tables == []


READER = textwrap.dedent(
    """
    import sys, time, duckdb
    errors, reads, deadline = 0, 0, time.monotonic() + float(sys.argv[2])
    while time.monotonic() < deadline:
        try:
            with duckdb.connect(sys.argv[1], read_only=True) as con:
                con.execute("select count(*) from batch_scores").fetchall()
            reads += 1
        except duckdb.Error as error:
            errors += 1
            print(error, file=sys.stderr)
    print(reads, errors)
    """
)


def test_a_reader_never_fails_while_batches_are_published(warehouse):
    root, path = warehouse
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, path, "3"], stdout=subprocess.PIPE, text=True
    )
    for i in range(30):
        lake.publish(stage(root, f"k{i % 3}", f"h{i}", 2000), root, lake.SCORES, f"k{i % 3}")
    out, _ = reader.communicate(timeout=60)
    reads, errors = map(int, out.split())
    assert reads > 0 and errors == 0
    assert count(path, "select count(*) from batch_scores") == 6000


KILLED_PUBLISH = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import pyarrow as pa, pyarrow.parquet as pq
    staged = Path(sys.argv[1])
    with pq.ParquetWriter(staged, pa.schema([("batch_key", pa.string())])) as writer:
        writer.write_table(pa.table({"batch_key": ["a"] * 1000}))
        os.kill(os.getpid(), signal.SIGKILL)  # dies before the file is complete and renamed
    """
)


def test_a_run_killed_while_writing_leaves_the_published_batch(warehouse):
    root, path = warehouse
    lake.publish(stage(root, "a", "old", 5), root, lake.SCORES, "a")
    staged = lake.staging_dir(root, "a") / "scores.parquet"
    killed = subprocess.run([sys.executable, "-c", KILLED_PUBLISH, str(staged)], check=False)
    assert killed.returncode == -9
    assert count(path, "select count(*) from batch_scores where content_hash = 'old'") == 5
    assert os.path.exists(staged)  # half-written work stays out of every view


def test_work_a_killed_run_left_long_ago_is_removed(tmp_path):
    root = tmp_path / "lake"
    old = lake.staging_dir(root, "a")
    recent = lake.staging_dir(root, "a")
    long_ago = time.time() - lake.STALE_STAGING_SECONDS - 60
    os.utime(old, (long_ago, long_ago))
    lake.staging_dir(root, "a")
    assert not old.exists() and recent.exists()


def test_discarding_a_runs_work_removes_its_batch_folder_once_empty(tmp_path):
    root = tmp_path / "lake"
    first, second = lake.staging_dir(root, "a"), lake.staging_dir(root, "a")
    lake.discard_staging(first)
    assert second.parent.is_dir()  # another run of the batch still works there
    lake.discard_staging(second)
    assert list((root / lake.STAGING).iterdir()) == []
