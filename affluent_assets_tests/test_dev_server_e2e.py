"""End to end with the real processes: `dagster dev` (webserver + daemon) on a temporary
DAGSTER_HOME and free port; the landing sensor (on by default) scores a dropped demo file into
DuckDB and quarantines a bad one, and the outcomes sensor reads a campaign's outcome file into
model_outcomes; a labelled file that lands refreshes model_outcomes by itself (the labelled-batch
sensor), with no main-graph run. Needs no network; takes about three minutes."""

import os

import duckdb
import pandas as pd
import pytest

from affluent_assets.lib.demo_data import generate_customers
from affluent_assets.lib.demo_files import write_extract
from affluent_assets_tests.defs.conftest import register_tiny_model
from affluent_assets_tests.servers import DAGSTER, DagsterStores, count_rows, stop, wait_for

ROWS = 2_000


@pytest.mark.skipif(not DAGSTER.exists(), reason="dagster CLI not installed in this environment")
def test_dropped_files_are_scored_or_quarantined_by_dagster_dev(tmp_path):
    models = register_tiny_model(tmp_path / "mlflow")
    stores = DagsterStores(tmp_path, models.tracking_uri, models.artifact_root)
    landing, quarantine, warehouse = stores.landing, stores.quarantine, stores.warehouse
    log = tmp_path / "dagster-dev.log"
    server = stores.start(log)
    try:
        staged = write_extract(
            generate_customers(ROWS, seed=21).drop(columns="C_seg"), tmp_path / "etb week 1.csv"
        )
        os.replace(staged, landing / staged.name)  # lands whole, as a finished copy would
        scored = wait_for(
            lambda: (
                count_rows(
                    warehouse,
                    "select count(*) from batch_scores where source_file = ?",
                    [staged.name],
                )
                == ROWS
            ),
            "the dropped file's scores in DuckDB",
            server,
            log,
        )
        assert scored
        # The list with reasons is published after the scores (batch_candidates is a later
        # step), so it is waited for, not expected at the same moment.
        listed = wait_for(
            lambda: (count_rows(warehouse, "select count(*) from latest_candidates", []) or 0) > 0,
            "the dropped file's candidates in DuckDB",
            server,
            log,
        )
        assert listed

        (landing / "broken.csv").write_text("C_ID,C_AGE\n1,forty\n")
        reason = quarantine / "broken.csv.reason.txt"
        wait_for(reason.exists, "the bad file in quarantine", server, log)
        assert "broken.csv" in reason.read_text()
        assert not (landing / "broken.csv").exists()
        assert count_rows(warehouse, "select count(*) from batch_scores", []) == ROWS

        # The campaign comes back: the outcomes sensor reads the called list under the daemon
        # and outcomes_job (the code location's own job and resources) writes the figures.
        called = called_list(warehouse, 20)
        called["upgraded"] = ["yes"] * 5 + ["no"] * 15
        outcomes = stores.data / "outcomes"
        outcomes.mkdir()
        called.to_csv(outcomes / "campaign.csv", index=False)
        judged = "select customers, affluent from model_outcomes where source = 'outcome files'"
        assert wait_for(
            lambda: _one_row(warehouse, judged) == (20, 5),
            "the outcome file's figures in model_outcomes",
            server,
            log,
        )

        # A labelled file lands: its realized and estimated figures follow by themselves.
        labelled = write_extract(generate_customers(ROWS, seed=22), tmp_path / "etb after.csv")
        os.replace(labelled, landing / labelled.name)
        measured = (
            "select customers, (estimated_precision between 0 and 1)::int from model_outcomes"
            " where source = 'labelled files'"
        )
        assert wait_for(
            lambda: _one_row(warehouse, measured) == (ROWS, 1),
            "the labelled file's figures in model_outcomes",
            server,
            log,
        )
    finally:
        stop(server)


def called_list(warehouse, customers: int) -> pd.DataFrame:
    """The top of the landed list as the page hands it out: batch, customer and version."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            # the control group is held back, not called
            "select batch_key, customer_key, model_version from latest_candidates"
            """ where "group" = 'campaign' order by candidate_rank limit ?""",
            [customers],
        ).df()


def _one_row(warehouse, sql: str) -> tuple | None:
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            found = con.execute(sql).fetchall()
    except duckdb.Error:  # no table yet, or a writer holds the lock
        return None
    return tuple(int(v) for v in found[0]) if found else None
