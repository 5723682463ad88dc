"""Outcomes of landed files that carried `C_seg`: realized precision and recall per model
version, by hand from the stored scores; the check warns (and an alert goes out) when realized
precision falls short of the holdout's by more than the margin."""

import dagster as dg
import duckdb
import pandas as pd
from dagster_duckdb import DuckDBResource

from affluent_assets.defs.alerts.sensors import check_alerts_for
from affluent_assets.defs.monitoring.outcomes import model_outcomes
from affluent_assets.lib import registry
from affluent_assets.lib.evaluation import LIST_MIN_CALLED
from affluent_assets_tests.defs.conftest import register_tiny_model
from affluent_assets_tests.defs.test_landing_runs import land


def materialize_outcomes(stores, **config):
    return dg.materialize(
        [model_outcomes],
        resources={
            "duckdb": DuckDBResource(database=str(stores.warehouse)),
            "mlflow_models": stores.models.resource(),
            "io_manager": dg.mem_io_manager,
        },
        run_config={"ops": {"model_outcomes": {"config": config}}},
        selection=[model_outcomes],
        instance=stores.instance,
    )


def check_named(result, name: str):
    return {c.check_name: c for c in result.get_asset_check_evaluations()}[name]


def by_hand(stores) -> tuple[float, float, int]:
    with duckdb.connect(str(stores.warehouse), read_only=True) as con:
        scores = con.execute("select * from batch_scores where c_seg is not null").df()
    flagged = scores["predicted_segment"] == "AFFLUENT"
    upgraded = scores["c_seg"] == "AFFLUENT"
    hits = int((flagged & upgraded).sum())
    return hits / flagged.sum(), hits / upgraded.sum(), int(flagged.sum())


def test_labelled_landed_files_give_realized_precision_per_version(landing_stores, tmp_path):
    stores = landing_stores
    stores.models = register_tiny_model(tmp_path / "models")
    land(stores, "outcomes.csv", rows=1500, seed=51, label=True)
    land(stores, "unlabelled.csv", rows=500, seed=52)
    assert stores.run("outcomes.csv").success and stores.run("unlabelled.csv").success
    registry.log_holdout_metrics(
        stores.models.tracking_uri, stores.models.model.run_id, {"precision": 0.99}
    )

    result = materialize_outcomes(stores, margin=0.10, min_flagged=50)
    table = result.output_for_node("model_outcomes")
    [row] = table.to_dict(orient="records")
    precision, recall, flagged = by_hand(stores)
    assert row["model_version"] == stores.models.model.version
    assert row["customers"] == 1500 and row["flagged"] == flagged  # labelled rows only
    assert abs(row["realized_precision"] - precision) < 1e-12
    assert abs(row["realized_recall"] - recall) < 1e-12
    assert row["expected_precision"] == 0.99 and 0 < row["precision_top_5pct"] <= 1
    check = check_named(result, "realized_precision")
    assert not check.passed and "vs expected 0.990" in check.description
    run = stores.instance.get_run_by_id(result.run_id)
    sent = {alert.kind: alert for alert in check_alerts_for(stores.instance, run, "http://ui")}
    assert "vs expected 0.990" in sent["outcome_expectation_missed"].detail
    # the scores' own estimate is far from that holdout figure: the population is not the one
    # the holdout described, so calibration is flagged as broken too
    assert "estimate and holdout apart" in sent["calibration_broken"].detail

    lenient = materialize_outcomes(stores, margin=1.0, min_flagged=50)
    assert check_named(lenient, "realized_precision").passed


def test_no_labelled_files_means_no_outcomes_yet(landing_stores):
    land(landing_stores, "plain.csv", rows=300, seed=53)
    assert landing_stores.run("plain.csv").success
    result = materialize_outcomes(landing_stores)
    assert result.output_for_node("model_outcomes").empty
    check = check_named(result, "realized_precision")
    assert check.passed and check.description == "no outcomes yet"
    files = check_named(result, "outcome_files")
    assert files.passed and files.description == "0 outcome file(s) read, none rejected"


def test_a_campaign_outcome_file_is_judged_against_the_list_it_came_from(
    landing_stores, tmp_path, monkeypatch
):
    """A landed batch's list called by a campaign: 20 flagged and 10 unflagged customers given
    back with `upgraded`; the figures are those of the hand-made answers."""
    monkeypatch.setenv("AFFLUENT_CONTROL_SHARE", "0")  # no one held back: all given back called
    stores = landing_stores
    land(stores, "march.csv", rows=800, seed=61)
    assert stores.run("march.csv").success
    with duckdb.connect(str(stores.warehouse), read_only=True) as con:
        scores = con.execute(
            "select batch_key, customer_key, model_version, predicted_segment,"
            " affluent_probability from batch_scores"
            " order by affluent_probability desc"
        ).df()
    flagged = scores[scores["predicted_segment"] == "AFFLUENT"].head(20)
    unflagged = scores[scores["predicted_segment"] != "AFFLUENT"].head(10)
    called = pd.concat([flagged, unflagged]).drop(
        columns=["predicted_segment", "affluent_probability"]
    )
    called["upgraded"] = ["yes"] * 12 + ["no"] * 8 + ["yes", "true"] + ["no"] * 8
    folder = tmp_path / "outcomes"
    folder.mkdir()
    called.to_csv(folder / "march-campaign.csv", index=False)

    result = materialize_outcomes(stores, outcomes_dir=str(folder), margin=0.5, min_flagged=10)
    [row] = result.output_for_node("model_outcomes").to_dict(orient="records")
    assert (row["source"], row["model_version"]) == ("outcome files", stores.models.model.version)
    assert (row["customers"], row["flagged"], row["affluent"]) == (30, 20, 14)
    assert row["realized_precision"] == 12 / 20 and row["realized_recall"] == 12 / 14
    assert row["lowest_flagged_score"] == flagged["affluent_probability"].min()
    # the top 10% of 30 called are the 3 best scores, all among the 12 who upgraded
    assert row["precision_top_10pct"] == 1.0
    # what the list promised: the holdout's precision calling down to the lowest flagged called
    models = stores.models.resource()
    curve = models.holdout_curve(models.describe(stores.models.model.version))
    promised = curve.at([row["lowest_flagged_score"]], min_called=LIST_MIN_CALLED)
    promised = promised["expected_precision"].iloc[0]
    assert row["expected_precision"] == promised and 0 < promised < 1
    assert check_named(result, "outcome_files").passed
    assert check_named(result, "realized_precision").passed
    files = result.asset_materializations_for_node("model_outcomes")[0].metadata["outcome_files"]
    assert "| march-campaign.csv | read | 30 customers, 14 upgraded" in files.value


def test_a_bad_outcome_file_is_quarantined_named_and_alerted(landing_stores, tmp_path):
    stores = landing_stores
    land(stores, "april.csv", rows=300, seed=62)
    assert stores.run("april.csv").success
    folder = tmp_path / "outcomes"
    folder.mkdir()
    pd.DataFrame(
        {"batch_key": "april.csv", "customer_key": ["1-1", "99999-1"], "model_version": "1",
         "upgraded": ["no", "soon"]}
    ).to_csv(folder / "typo.csv", index=False)  # fmt: skip

    result = materialize_outcomes(stores, outcomes_dir=str(folder))
    assert result.success and result.output_for_node("model_outcomes").empty
    check = check_named(result, "outcome_files")
    assert not check.passed
    assert "typo.csv quarantined: typo.csv: is not a valid outcomes file — column 'upgraded'" in (
        check.description
    )
    assert "data rows 2 ('soon')" in check.description
    assert (folder / "quarantine" / "typo.csv").exists() and not (folder / "typo.csv").exists()
    run = stores.instance.get_run_by_id(result.run_id)
    [alert] = check_alerts_for(stores.instance, run, "http://ui")
    assert alert.kind == "file_quarantined" and alert.file == "typo.csv"
    assert "data rows 2 ('soon')" in alert.detail
