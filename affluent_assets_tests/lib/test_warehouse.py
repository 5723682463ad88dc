"""DuckDB writes: whole-table and per-key replacement in one transaction (a failed write leaves
the old contents), names and keys treated as data, never as SQL."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from affluent_assets.lib.warehouse import (
    quote_identifier,
    read_table,
    replace_table,
    table_exists,
)


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


class KilledAtCommit:
    """A connection whose `commit` never happens (the process died just before it). Records
    what another connection could read at that moment."""

    def __init__(self, con: duckdb.DuckDBPyConnection, table: str):
        self._con = con
        self._table = table
        self.seen_by_reader: pd.DataFrame | None = None

    def __getattr__(self, name):
        return getattr(self._con, name)

    def execute(self, sql: str, *args):
        if sql.strip().lower() == "commit":
            reader = self._con.cursor()  # a second connection to the same database
            if table_exists(reader, self._table):
                self.seen_by_reader = read_table(reader, self._table)
            reader.close()
            raise RuntimeError("killed before commit")
        return self._con.execute(sql, *args)


OLD = pd.DataFrame({"customer_key": ["a-1", "b-2"], "score": [0.1, 0.2]})
NEW = pd.DataFrame({"customer_key": ["c-3"], "score": [0.9], "extra": ["x"]})


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("scores", '"scores"'),
        ('my"table', '"my""table"'),
        ('x"; drop table t; --', '"x""; drop table t; --"'),
        ("with space", '"with space"'),
        ('""', '""""""'),
    ],
)
def test_quote_identifier(name, quoted):
    assert quote_identifier(name) == quoted


def test_replace_table_creates_and_replaces(con):
    assert not table_exists(con, "scores")
    replace_table(con, "scores", OLD)
    assert table_exists(con, "scores")
    pd.testing.assert_frame_equal(read_table(con, "scores"), OLD)

    replace_table(con, "scores", NEW)  # new columns allowed; old rows gone
    pd.testing.assert_frame_equal(read_table(con, "scores"), NEW)


def test_replace_table_killed_before_commit_keeps_old_table(con):
    replace_table(con, "scores", OLD)
    killed = KilledAtCommit(con, "scores")

    with pytest.raises(RuntimeError, match="killed"):
        replace_table(killed, "scores", NEW)

    # A reader during the write saw the old table, and after the failure it is still there.
    pd.testing.assert_frame_equal(killed.seen_by_reader, OLD)
    pd.testing.assert_frame_equal(read_table(con, "scores"), OLD)
    # The connection is usable again (no transaction left open, no view left behind).
    replace_table(con, "scores", NEW)
    pd.testing.assert_frame_equal(read_table(con, "scores"), NEW)
    assert not table_exists(con, "incoming_frame")
    views = con.execute("select count(*) from duckdb_views() where view_name = 'incoming_frame'")
    assert views.fetchone()[0] == 0


def test_replace_table_failure_on_new_table_creates_nothing(con):
    killed = KilledAtCommit(con, "scores")
    with pytest.raises(RuntimeError):
        replace_table(killed, "scores", OLD)
    assert killed.seen_by_reader is None  # not visible to others before the commit
    assert not table_exists(con, "scores")


def test_table_exists_leaves_the_connection_usable(con):
    # Regression: fetchone() left DuckDB 2's result open, and register() then failed.
    assert not table_exists(con, "scores")
    replace_table(con, "scores", OLD)
    assert table_exists(con, "scores")
    con.register("again", OLD)  # the connection takes new work
    assert len(read_table(con, "scores")) == len(OLD)


def test_replace_table_survives_a_file_reopen(tmp_path):
    path = str(tmp_path / "w.duckdb")
    with duckdb.connect(path) as first:
        replace_table(first, "scores", OLD)
        with pytest.raises(RuntimeError):
            replace_table(KilledAtCommit(first, "scores"), "scores", NEW)
    with duckdb.connect(path) as second:
        pd.testing.assert_frame_equal(read_table(second, "scores"), OLD)


def test_read_table_with_parameters(con):
    replace_table(con, "scores", OLD)
    found = read_table(con, "scores", "customer_key = ?", ["b-2"])
    assert found["score"].tolist() == [0.2]
    assert read_table(con, "scores", "customer_key = ?", ["a' or '1'='1"]).empty
