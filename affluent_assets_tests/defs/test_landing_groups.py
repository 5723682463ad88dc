"""Landing runs that score a group of files (in process, as the sensor asks for small files that
land together): each file is its own batch with its own events, checks, quarantine and state on
the upload page; a bad file does not stop, delay or change the others; running the group again
leaves every file scored once."""

import dagster as dg
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

from affluent_assets.defs.landing.assets import landed_batches
from affluent_assets.web import batches
from affluent_assets_tests.defs.test_landing_runs import demo, failure_message, land, query

ROWS = {"a.csv": 300, "c.csv": 250}


def land_group(stores) -> None:
    land(stores, "a.csv", rows=ROWS["a.csv"], seed=1)
    bad = demo(rows=200, seed=2).astype({"C_AGE": object})
    bad.loc[2, "C_AGE"] = "forty"
    land(stores, "b.csv", bad)
    land(stores, "c.csv", rows=ROWS["c.csv"], seed=3)


def partition_status(stores) -> tuple[set, set]:
    """(materialized, failed) partitions of batch_scores, as the Dagster UI shows them."""
    key = dg.AssetKey("batch_scores")
    materialized = stores.instance.get_materialized_partitions(key)
    cache = get_and_update_asset_status_cache_value(stores.instance, key, landed_batches)
    failed = cache.deserialize_failed_partition_subsets(landed_batches).get_partition_keys()
    return set(materialized), set(failed)


def test_each_file_of_a_group_is_its_own_batch_and_a_bad_one_fails_alone(landing_stores):
    stores = landing_stores
    land_group(stores)
    result = stores.run_group(["a.csv", "b.csv", "c.csv"])

    assert not result.success
    message = failure_message(result)
    assert message.startswith("1 of the run's 3 files not scored (the others are):")
    assert "- b.csv: b.csv: breaks the data contract — column 'C_AGE'" in message
    assert "data rows 3" in message
    counts = query(stores, "select source_file, count(*) n from batch_scores group by 1 order by 1")
    assert dict(zip(counts["source_file"], counts["n"], strict=True)) == ROWS
    assert (stores.quarantine / "b.csv").exists() and not (stores.landing / "b.csv").exists()
    assert (stores.landing / "a.csv").exists()  # scored files stay, as after a run of their own

    assert partition_status(stores) == ({"a.csv", "c.csv"}, {"b.csv"})
    materialized = {
        (e.asset_key.path[-1], e.partition) for e in result.get_asset_materialization_events()
    }
    assert materialized == {
        (asset, key) for asset in ("batch_scores", "batch_candidates") for key in ROWS
    }
    schema = {
        c.partition: c.passed
        for c in result.get_asset_check_evaluations()
        if c.check_name == "matches_schema"
    }
    assert schema == {"a.csv": True, "b.csv": False, "c.csv": True}
    checked = {(c.check_name, c.partition) for c in result.get_asset_check_evaluations()}
    assert {name for name, key in checked if key == "a.csv"} == {
        "matches_schema", "data_quality", "feature_drift", "estimate_vs_holdout",
    }  # fmt: skip

    folders = batches.Folders(str(stores.landing), str(stores.quarantine), str(stores.lake))
    states = {key: batches.batch_state(stores.instance, folders, key) for key in ("a.csv", "b.csv")}
    assert states["a.csv"].status == "scored" and states["a.csv"].rows == ROWS["a.csv"]
    assert states["b.csv"].status == "quarantined" and "C_AGE" in states["b.csv"].reason


def test_a_group_run_again_leaves_every_file_scored_once(landing_stores):
    """What a retry after a crash does: the run scores its files again, and each batch is
    replaced whole, never added to."""
    stores = landing_stores
    land(stores, "a.csv", rows=ROWS["a.csv"], seed=1)
    land(stores, "c.csv", rows=ROWS["c.csv"], seed=3)
    assert stores.run_group(["a.csv", "c.csv"]).success
    first = query(stores, "select * from batch_scores order by customer_key")
    assert stores.run_group(["a.csv", "c.csv"]).success
    again = query(stores, "select * from batch_scores order by customer_key")
    assert len(again) == sum(ROWS.values()) and again["customer_key"].is_unique
    same = ["customer_key", "source_file", "affluent_probability", "model_version"]
    assert again[same].equals(first[same])


def test_a_file_scored_in_a_group_gets_what_a_run_of_its_own_gives_it(landing_stores, tmp_path):
    stores = landing_stores
    land(stores, "a.csv", rows=ROWS["a.csv"], seed=1)
    land(stores, "c.csv", rows=ROWS["c.csv"], seed=3)
    assert stores.run_group(["a.csv", "c.csv"]).success
    grouped = query(stores, "select * from latest_candidates where source_file = 'c.csv'")
    assert stores.run("c.csv").success
    alone = query(stores, "select * from latest_candidates where source_file = 'c.csv'")
    columns = [c for c in alone.columns if c not in ("run_id", "scored_at")]
    assert len(alone) > 0
    assert (
        grouped[columns]
        .sort_values("customer_key")
        .reset_index(drop=True)
        .equals(alone[columns].sort_values("customer_key").reset_index(drop=True))
    )


def test_a_file_gone_before_its_group_ran_is_named_and_the_others_are_scored(landing_stores):
    stores = landing_stores
    land(stores, "a.csv", rows=ROWS["a.csv"], seed=1)
    land(stores, "c.csv", rows=ROWS["c.csv"], seed=3)
    result = stores.run_group(["a.csv", "b.csv", "c.csv"])  # b.csv was moved away meanwhile
    assert not result.success
    message = failure_message(result)
    assert "1 of the run's 3 files not scored" in message
    assert f"- b.csv: batch 'b.csv': no landing file for it in {stores.landing}" in message
    assert partition_status(stores) == ({"a.csv", "c.csv"}, {"b.csv"})
    assert not stores.quarantine.exists() or not any(stores.quarantine.iterdir())
