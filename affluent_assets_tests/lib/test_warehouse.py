"""DuckDB writes: whole-table and per-key replacement in one transaction (a failed write leaves
the old contents), names and keys treated as data, never as SQL."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from affluent_assets.lib.warehouse import (
    quote_identifier,
    read_table,
    replace_rows,
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
    replace_rows(con, "scores", "customer_key", "a-1", OLD.head(1))
    assert len(read_table(con, "scores")) == 2


def test_replace_table_survives_a_file_reopen(tmp_path):
    path = str(tmp_path / "w.duckdb")
    with duckdb.connect(path) as first:
        replace_table(first, "scores", OLD)
        with pytest.raises(RuntimeError):
            replace_table(KilledAtCommit(first, "scores"), "scores", NEW)
    with duckdb.connect(path) as second:
        pd.testing.assert_frame_equal(read_table(second, "scores"), OLD)


def _batch(key: str, scores: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "batch": [key] * len(scores),
            "customer_key": [f"{key}/{i}" for i in range(len(scores))],
            "score": scores,
        }
    )


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["batch", "customer_key"]).reset_index(drop=True)


def test_replace_rows_only_touches_the_given_key(con):
    replace_rows(con, "scores", "batch", "jan", _batch("jan", [0.1, 0.2, 0.3]))
    replace_rows(con, "scores", "batch", "feb", _batch("feb", [0.4, 0.5]))
    replace_rows(con, "scores", "batch", "jan", _batch("jan", [0.9]))  # rerun of jan

    stored = _sorted(read_table(con, "scores"))
    expected = _sorted(pd.concat([_batch("feb", [0.4, 0.5]), _batch("jan", [0.9])]))
    pd.testing.assert_frame_equal(stored, expected)


def test_replace_rows_is_idempotent(con):
    for _ in range(3):
        replace_rows(con, "scores", "batch", "jan", _batch("jan", [0.1, 0.2]))
    assert len(read_table(con, "scores")) == 2


def test_replace_rows_accepts_columns_in_another_order(con):
    replace_rows(con, "scores", "batch", "jan", _batch("jan", [0.1]))
    reordered = _batch("feb", [0.7])[["score", "customer_key", "batch"]]
    replace_rows(con, "scores", "batch", "feb", reordered)
    stored = read_table(con, "scores", "batch = ?", ["feb"])
    assert stored.loc[0, "score"] == 0.7 and stored.loc[0, "customer_key"] == "feb/0"


@pytest.mark.parametrize(
    "key",
    [
        "it's",
        "../../etc/passwd",
        "a key with spaces",
        "x' or '1'='1",
        "'; drop table scores; --",
        'double"quote',
        "",
    ],
)
def test_replace_rows_key_is_data_not_sql(con, key):
    replace_rows(con, "scores", "batch", "keep", _batch("keep", [0.1, 0.2]))
    replace_rows(con, "scores", "batch", key, _batch(key, [0.5]))
    replace_rows(con, "scores", "batch", key, _batch(key, [0.6, 0.7]))  # replaces only its own

    assert table_exists(con, "scores")
    stored = read_table(con, "scores")
    assert sorted(stored["batch"].unique()) == sorted({"keep", key})
    assert stored.loc[stored["batch"] == "keep", "score"].tolist() == [0.1, 0.2]
    assert sorted(stored.loc[stored["batch"] == key, "score"]) == [0.6, 0.7]
    assert read_table(con, "scores", "batch = ?", [key])["score"].tolist() == [0.6, 0.7]


@pytest.mark.parametrize("table", ['scores"; drop table other; --', "my table", "a.b", 'q"q'])
def test_table_names_are_identifiers_not_sql(con, table):
    replace_table(con, "other", OLD)
    replace_rows(con, table, "batch", "jan", _batch("jan", [0.1]))
    replace_table(con, table + "_copy", OLD)

    assert table_exists(con, table) and table_exists(con, table + "_copy")
    assert table_exists(con, "other")
    pd.testing.assert_frame_equal(read_table(con, "other"), OLD)
    assert read_table(con, table)["batch"].tolist() == ["jan"]


def test_replace_rows_failure_restores_deleted_rows(con):
    replace_rows(con, "scores", "batch", "jan", _batch("jan", [0.1, 0.2]))
    bad = _batch("jan", [0.9]).assign(unknown_column=1)  # insert fails after the delete ran

    with pytest.raises(duckdb.Error):
        replace_rows(con, "scores", "batch", "jan", bad)

    pd.testing.assert_frame_equal(_sorted(read_table(con, "scores")), _batch("jan", [0.1, 0.2]))
    replace_rows(con, "scores", "batch", "feb", _batch("feb", [0.3]))  # connection still usable
    assert len(read_table(con, "scores")) == 3


def test_replace_rows_killed_before_commit_keeps_old_rows(con):
    replace_rows(con, "scores", "batch", "jan", _batch("jan", [0.1, 0.2]))
    killed = KilledAtCommit(con, "scores")
    with pytest.raises(RuntimeError):
        replace_rows(killed, "scores", "batch", "jan", _batch("jan", [0.9]))
    pd.testing.assert_frame_equal(_sorted(killed.seen_by_reader), _batch("jan", [0.1, 0.2]))
    pd.testing.assert_frame_equal(_sorted(read_table(con, "scores")), _batch("jan", [0.1, 0.2]))


def test_replace_rows_killed_on_first_write_creates_no_table(con):
    with pytest.raises(RuntimeError):
        replace_rows(KilledAtCommit(con, "scores"), "scores", "batch", "jan", _batch("jan", [0.1]))
    assert not table_exists(con, "scores")


def test_read_table_with_parameters(con):
    replace_table(con, "scores", OLD)
    found = read_table(con, "scores", "customer_key = ?", ["b-2"])
    assert found["score"].tolist() == [0.2]
    assert read_table(con, "scores", "customer_key = ?", ["a' or '1'='1"]).empty
