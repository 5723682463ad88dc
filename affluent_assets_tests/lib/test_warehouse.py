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


def test_history_keeps_every_snapshot_and_answers_as_of_a_date(tmp_path):
    from datetime import datetime

    from affluent_assets.lib import history

    def listing(keys, version):
        return pd.DataFrame(
            {
                "candidate_rank": range(1, len(keys) + 1),
                "customer_key": keys,
                "affluent_probability": [0.9 - 0.1 * i for i in range(len(keys))],
                "expected_precision": 0.5,
                "reason_1": "Asset value = 1 (+1.00)",
                "model_version": version,
            }
        )

    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        nov, dec = datetime(2026, 11, 1), datetime(2026, 12, 1)
        first = history.snapshot(listing(["a", "b"], "1"), "run-1", nov, "threshold", 0.5)
        assert history.append_snapshot(con, first) == 1
        second = history.snapshot(listing(["c"], "2"), "run-2", dec, "capacity", 0.7)
        assert history.append_snapshot(con, second) == 2
        assert history.append_snapshot(con, second) == 2  # a rerun replaces only its own rows
        latest = con.execute(
            "select customer_key, model_version from latest_candidate_list"
        ).fetchall()
        assert latest == [("c", "2")]
        november = con.execute(
            "select customer_key from candidates_as_of(TIMESTAMP '2026-11-15') order by all"
        ).fetchall()
        assert november == [("a",), ("b",)]
        assert con.execute("select count(*) from candidate_history").fetchall()[0][0] == 3


def test_a_history_kept_from_before_control_groups_gains_who_was_control(tmp_path):
    from datetime import datetime

    from affluent_assets.lib import history

    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        # a history written before snapshots carried `group` and `estimated_precision`
        con.execute(
            "create table candidate_history as select 'run-0' as snapshot_id,"
            " TIMESTAMP '2026-10-01' as snapshot_at, '1' as model_version,"
            " 'threshold' as policy, 0.5 as score_cut, 1 as candidate_rank,"
            " 'old-1' as customer_key, 0.9 as affluent_probability, 0.8 as expected_precision,"
            " null::varchar as reason_1, null::varchar as reason_2, null::varchar as reason_3"
        )
        listed = pd.DataFrame(
            {"candidate_rank": [1, 2], "customer_key": ["a", "b"],
             "affluent_probability": [0.9, 0.8], "estimated_precision": [0.9, 0.85],
             "group": ["campaign", "control"], "model_version": "2"}
        )  # fmt: skip
        snapshot = history.snapshot(listed, "run-1", datetime(2026, 12, 1), "threshold", 0.5)
        assert history.append_snapshot(con, snapshot) == 2
        kept = con.execute(
            'select snapshot_id, customer_key, "group" from candidate_history order by all'
        ).fetchall()
        assert kept == [("run-0", "old-1", None), ("run-1", "a", "campaign"),
                        ("run-1", "b", "control")]  # fmt: skip
