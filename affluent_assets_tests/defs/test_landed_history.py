"""Every list a landed batch has had is kept: rescoring a batch replaces what
`latest_candidates` shows, and the earlier list stays in `batch_candidate_history`; the macro
`batch_candidates_as_of` gives each batch's list as it stood at a time."""

import duckdb

from affluent_assets_tests.defs.test_landing_runs import land


def test_a_rescored_batch_keeps_its_earlier_list(landing_stores):
    land(landing_stores, "branch.csv", rows=600, seed=71)
    first = landing_stores.run("branch.csv")
    second = landing_stores.run("branch.csv")  # the same file again: rescored, replaced
    assert first.success and second.success
    with duckdb.connect(str(landing_stores.warehouse), read_only=True) as con:
        runs = con.execute(
            "select run_id, count(*) from batch_candidate_history group by run_id order by all"
        ).fetchall()
        latest = con.execute("select distinct run_id from latest_candidates").fetchall()
    assert sorted(run for run, _ in runs) == sorted([first.run_id, second.run_id])
    assert runs[0][1] == runs[1][1] > 0  # the same list twice, kept twice
    assert latest == [(second.run_id,)]
    with duckdb.connect(str(landing_stores.warehouse), read_only=True) as con:
        [(between,)] = con.execute(
            "select min(scored_at) from batch_candidate_history where run_id = ?",
            [second.run_id],
        ).fetchall()
        before = con.execute(
            "select distinct run_id"
            " from batch_candidates_as_of(?::timestamp - interval 1 microsecond)",
            [between],
        ).fetchall()
        now = con.execute(
            "select distinct run_id from batch_candidates_as_of(now()::timestamp)"
        ).fetchall()
        early = con.execute(
            "select count(*) from batch_candidates_as_of(timestamp '2000-01-01')"
        ).fetchall()
    assert before == [(first.run_id,)] and now == [(second.run_id,)] and early == [(0,)]
