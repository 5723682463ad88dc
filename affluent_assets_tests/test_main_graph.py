"""The whole main graph materialized in process on a small demo extract, into a temporary
DuckDB file and MLflow store, with assertions on what analysts will query."""

import dagster as dg
import duckdb
import pandas as pd
import pytest
from dagster_duckdb import DuckDBResource
from mlflow.tracking import MlflowClient

from affluent_assets.definitions import MAIN_ASSETS
from affluent_assets.defs.alerts.sensors import AlertWebhook, failure_alerts
from affluent_assets.defs.resources import DuckDBTableIOManager, ExtractSource, MlflowModels
from affluent_assets.lib.demo_data import generate_customers
from affluent_assets.lib.demo_files import write_extract
from affluent_assets_tests.defs.test_alerts import Receiver, evaluate

ROWS = 2500
FAST_MODEL = {"ops": {"model_training": {"config": {"tuning_budget_seconds": 0, "cv_folds": 3}}}}


def resources_for(tmp, extract_location):
    duckdb_resource = DuckDBResource(database=str(tmp / "warehouse.duckdb"))
    return {
        "extract": ExtractSource(location=str(extract_location), demo_rows=ROWS, demo_seed=11),
        "mlflow_models": MlflowModels(
            tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}", artifact_root=str(tmp / "artifacts")
        ),
        "duckdb": duckdb_resource,
        "io_manager": DuckDBTableIOManager(duckdb=duckdb_resource),
    }


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("graph")
    (tmp / "raw").mkdir()
    result = dg.materialize(
        MAIN_ASSETS, resources=resources_for(tmp, tmp / "raw"), run_config=FAST_MODEL
    )
    assert result.success
    return tmp


def promotion_check(result):
    return next(
        c for c in result.get_asset_check_evaluations() if c.check_name == "challenger_vs_champion"
    )


def query(stores, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(stores / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).df()


def test_every_table_exists_with_rows(stores):
    tables = set(query(stores, "show tables")["name"])
    assert {
        "raw_customers",
        "clean_customers",
        "customer_features",
        "customer_split",
        "affluent_model",
        "model_evaluation",
        "scored_customers",
        "hidden_affluent_candidates",
        "candidate_segments",
    } <= tables
    counts = query(
        stores,
        "select (select count(*) from raw_customers) raw,"
        " (select count(*) from scored_customers) scored",
    )
    assert counts.loc[0, "raw"] == ROWS and counts.loc[0, "scored"] == ROWS


def test_raw_table_keeps_contract_names_and_types(stores):
    raw = query(stores, "select * from raw_customers limit 5")
    assert "Asset value" in raw.columns and "C_seg" in raw.columns
    assert str(raw["C_ID"].dtype) == "int64" and str(raw["NUM_PRD"].dtype) == "int64"


def test_split_is_disjoint_stratified_and_complete(stores):
    split = query(
        stores,
        "select split, count(*) n, avg(is_affluent) share from customer_split group by split",
    )
    split = split.set_index("split")
    assert split["n"].sum() == ROWS
    assert abs(split.loc["holdout", "n"] / ROWS - 0.3) < 0.01
    assert abs(split.loc["train", "share"] - split.loc["holdout", "share"]) < 0.01


def test_holdout_figures_by_group_and_the_model_card(stores):
    groups = query(stores, "select * from model_group_metrics")
    assert set(groups["grouping"]) == {"age_band", "occupation"}
    for _, rows in groups.groupby("grouping"):
        assert (
            rows["rows"].sum()
            == query(stores, "select count(*) as n from customer_split where split = 'holdout'")[
                "n"
            ][0]
        )
    model = query(stores, "select * from affluent_model").iloc[0]
    client = MlflowClient(f"sqlite:///{stores / 'mlflow.db'}")
    version = client.get_model_version(model["model_name"], str(model["model_version"]))
    artifacts = [a.path for a in client.list_artifacts(version.run_id)]
    assert "model_card.md" in artifacts


def test_model_is_registered_and_is_champion(stores):
    model = query(stores, "select * from affluent_model")
    assert len(model) == 1
    client = MlflowClient(f"sqlite:///{stores / 'mlflow.db'}")
    champion = client.get_model_version_by_alias(model.loc[0, "model_name"], "champion")
    assert str(champion.version) == str(model.loc[0, "model_version"])
    assert float(champion.tags["threshold"]) == pytest.approx(model.loc[0, "threshold"])
    run = client.get_run(model.loc[0, "mlflow_run_id"])
    assert "cv_roc_auc" in run.data.metrics and "holdout_roc_auc" in run.data.metrics
    assert run.data.params["target_recall"] == "0.8"


def test_threshold_reaches_target_recall_on_training_folds(stores):
    model = query(stores, "select * from affluent_model").iloc[0]
    assert model["cv_recall_at_threshold"] >= model["target_recall"]
    assert 0 < model["threshold"] < 1


def test_evaluation_is_on_holdout_rows_only(stores):
    metrics = query(stores, "select metric, value from model_evaluation").set_index("metric")[
        "value"
    ]
    holdout_rows = query(
        stores, "select count(*) n from customer_split where split = 'holdout'"
    ).loc[0, "n"]
    assert metrics["rows"] == holdout_rows
    assert (
        metrics["true_positives"] + metrics["false_negatives"]
        == query(
            stores, "select sum(is_affluent) n from customer_split where split = 'holdout'"
        ).loc[0, "n"]
    )
    # A demo set this small is noisier than the real 66k, but must be far from both chance and 0.99.
    assert 0.7 < metrics["roc_auc"] < 0.97


def test_candidates_are_normal_customers_above_threshold_ranked(stores):
    candidates = query(stores, "select * from hidden_affluent_candidates order by candidate_rank")
    scored = query(stores, "select * from scored_customers")
    threshold = query(stores, "select threshold from champion_model").loc[0, "threshold"]
    expected = scored[(scored["c_seg"] == "NORMAL") & (scored["affluent_probability"] >= threshold)]
    assert set(candidates["customer_key"]) == set(expected["customer_key"])
    assert candidates["customer_key"].is_unique
    assert list(candidates["candidate_rank"]) == list(range(1, len(candidates) + 1))
    assert candidates["affluent_probability"].is_monotonic_decreasing
    assert candidates["reason_1"].str.match(r".+ = .+ \([+-]\d+\.\d\d\)$").all()
    assert candidates["expected_precision"].between(0, 1).all()


def test_training_rows_carry_out_of_fold_scores(stores):
    scored = query(stores, "select * from scored_customers")
    folds = query(stores, "select * from out_of_fold_scores")
    train = scored[scored["split"] == "train"].merge(folds, on="customer_key", validate="1:1")
    assert len(train) == (scored["split"] == "train").sum()
    assert (train["score_source"] == "out_of_fold").all()
    assert (train["affluent_probability"] == train["oof_probability"]).all()
    holdout = scored[scored["split"] == "holdout"]
    assert (holdout["score_source"] == "holdout").all()
    assert not holdout["customer_key"].isin(folds["customer_key"]).any()


def test_segments_compare_candidates_with_both_classes(stores):
    segments = query(stores, "select * from candidate_segments")
    assert set(segments["segment"]) == {
        "hidden_affluent_candidates",
        "affluent",
        "normal_not_flagged",
    }
    shares = segments[segments["measure"] == "share"].groupby(["segment", "feature"])["value"].sum()
    assert ((shares - 1).abs() < 1e-9).all()


def test_bad_extract_stops_the_run_and_keeps_stored_tables(stores, tmp_path):
    before = query(stores, "select count(*) n from raw_customers").loc[0, "n"]
    bad = generate_customers(300, seed=3)
    bad["MTHCASA"] = bad["MTHCASA"].astype(object)
    bad.loc[[4, 9], "MTHCASA"] = "twelve"
    path = write_extract(bad, tmp_path / "etb_bad.csv")
    result = dg.materialize(
        MAIN_ASSETS,
        resources=resources_for(stores, path),
        run_config=FAST_MODEL,
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message
    assert (
        "etb_bad.csv" in message
        and "MTHCASA" in message
        and "5 ('twelve')" in message
        and "10 ('twelve')" in message
    )
    checks = [c for c in result.get_asset_check_evaluations() if c.check_name == "matches_schema"]
    assert checks and not checks[0].passed
    assert query(stores, "select count(*) n from raw_customers").loc[0, "n"] == before


def test_challenger_that_does_not_beat_champion_leaves_champion_and_lists(stores):
    """A second training whose model must beat the champion by 0.5 PR-AUC (impossible): the
    champion keeps its alias, the blocking check fails and scoring is skipped in that run."""
    champion_before = query(stores, "select model_version from champion_model").iloc[0, 0]
    candidates_before = query(stores, "select * from hidden_affluent_candidates")
    strict = {
        "ops": {
            **FAST_MODEL["ops"],
            "champion_model": {"config": {"tolerance": -0.5}},
        }
    }
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        MAIN_ASSETS,
        resources=resources_for(stores, stores / "raw"),
        run_config=strict,
        raise_on_error=False,
        instance=instance,
    )
    check = promotion_check(result)
    assert not check.passed
    assert "worse than champion" in check.description
    decision = query(stores, "select * from champion_model").iloc[0]
    assert decision["decision"] == "kept_champion"
    assert decision["model_version"] == champion_before
    assert decision["challenger_version"] != champion_before
    client = MlflowClient(f"sqlite:///{stores / 'mlflow.db'}")
    assert str(
        client.get_model_version_by_alias(decision["model_name"], "champion").version
    ) == str(champion_before)
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert "champion_model" in materialized
    assert not {"scored_customers", "hidden_affluent_candidates"} & materialized
    pd.testing.assert_frame_equal(
        query(stores, "select * from hidden_affluent_candidates"), candidates_before
    )
    # One alert reaches the webhook and says what happened: the champion was kept, and which
    # model lost.
    receiver = Receiver()
    try:
        evaluate(failure_alerts, instance, result, AlertWebhook(url=receiver.url))
    finally:
        receiver.server.shutdown()
    [alert] = receiver.received
    assert alert["kind"] == "champion_kept" and "worse than champion" in alert["detail"]
    assert alert["model_version"] == str(decision["challenger_version"])


def test_capacity_policy_lists_the_best_n_normal_customers(stores):
    result = dg.materialize(
        MAIN_ASSETS,
        selection=dg.AssetSelection.assets("hidden_affluent_candidates"),
        resources=resources_for(stores, stores / "raw"),
        run_config={
            "ops": {
                "hidden_affluent_candidates": {"config": {"policy": "capacity", "capacity": "50"}}
            }
        },
    )
    assert result.success
    candidates = query(stores, "select * from hidden_affluent_candidates order by candidate_rank")
    normal = query(
        stores,
        "select affluent_probability from scored_customers where c_seg = 'NORMAL'"
        " order by affluent_probability desc limit 50",
    )
    assert len(candidates) == 50
    assert (candidates["policy"] == "capacity").all()
    assert list(candidates["affluent_probability"]) == list(normal["affluent_probability"])


def test_a_first_model_under_a_floor_never_becomes_champion(tmp_path):
    (tmp_path / "raw").mkdir()
    floors = {"champion_model": {"config": {"min_pr_auc": 0.99}}}
    result = dg.materialize(
        MAIN_ASSETS,
        resources=resources_for(tmp_path, tmp_path / "raw"),
        run_config={"ops": {**FAST_MODEL["ops"], **floors}},
        raise_on_error=False,
    )
    check = promotion_check(result)
    assert not check.passed
    assert check.description.startswith("challenger below the promotion floors: PR-AUC")
    assert "< floor 0.9900" in check.description
    decision = query(tmp_path, "select * from champion_model").iloc[0]
    assert decision["decision"] == "no_champion" and pd.isna(decision["model_version"])
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(Exception, match="alias"):
        client.get_model_version_by_alias(decision["model_name"], "champion")
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert "scored_customers" not in materialized  # nothing scores without a champion


def test_each_run_leaves_a_snapshot_of_its_list(stores):
    """Runs of the module (the first training, the kept-champion run, the capacity policy, ...)
    each append; the latest snapshot is the current table, earlier ones stay as they were."""
    lists = query(stores, "select * from candidate_lists order by snapshot_at")
    assert len(lists) >= 1 and lists["snapshot_id"].is_unique
    latest = query(stores, "select * from latest_candidate_list order by candidate_rank")
    current = query(stores, "select * from hidden_affluent_candidates order by candidate_rank")
    assert latest["customer_key"].tolist() == current["customer_key"].tolist()
    assert latest["reason_1"].tolist() == current["reason_1"].tolist()
    first = lists.iloc[0]
    as_of = query(stores, f"select * from candidates_as_of(TIMESTAMP '{first['snapshot_at']}')")
    assert set(as_of["snapshot_id"]) == {first["snapshot_id"]}
    assert len(as_of) == first["candidates"]


def test_a_model_that_waits_for_approval_becomes_champion_only_when_approved(
    tmp_path, monkeypatch, capsys
):
    from affluent_assets.cli import main as affluent

    (tmp_path / "raw").mkdir()
    waiting = {"champion_model": {"config": {"require_approval": True}}}
    result = dg.materialize(
        MAIN_ASSETS,
        resources=resources_for(tmp_path, tmp_path / "raw"),
        run_config={"ops": {**FAST_MODEL["ops"], **waiting}},
        raise_on_error=False,
    )
    check = promotion_check(result)
    assert not check.passed and "waiting for approval: affluent approve 1" in check.description
    decision = query(tmp_path, "select * from champion_model").iloc[0]
    assert decision["decision"] == "pending_approval"
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking)
    assert client.get_model_version(decision["model_name"], "1").tags["pending_approval"] == "true"
    with pytest.raises(Exception, match="alias"):
        client.get_model_version_by_alias(decision["model_name"], "champion")

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
    assert affluent(["approve", "1", "--by", "risk-officer"]) == 0
    assert "v1 is the champion (approved by risk-officer)" in capsys.readouterr().out
    approved = client.get_model_version_by_alias(decision["model_name"], "champion")
    assert str(approved.version) == "1" and approved.tags["approved_by"] == "risk-officer"
    assert affluent(["approve", "1"]) == 2  # no longer waiting
    assert "is not waiting for approval" in capsys.readouterr().err
