"""Outcomes of landed files that carried `C_seg`: realized precision and recall per model
version, by hand from the stored scores; the check warns (and an alert goes out) when realized
precision falls short of the holdout's by more than the margin."""

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from affluent_assets.defs.alerts.sensors import check_alerts_for
from affluent_assets.defs.landing.outcomes import model_outcomes
from affluent_assets.lib import registry
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
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and "vs expected 0.990" in check.description
    run = stores.instance.get_run_by_id(result.run_id)
    [alert] = check_alerts_for(stores.instance, run, "http://ui")
    assert alert.kind == "outcome_expectation_missed" and "vs expected 0.990" in alert.detail

    lenient = materialize_outcomes(stores, margin=1.0, min_flagged=50)
    assert lenient.get_asset_check_evaluations()[0].passed


def test_no_labelled_files_means_no_outcomes_yet(landing_stores):
    land(landing_stores, "plain.csv", rows=300, seed=53)
    assert landing_stores.run("plain.csv").success
    result = materialize_outcomes(landing_stores)
    assert result.output_for_node("model_outcomes").empty
    [check] = result.get_asset_check_evaluations()
    assert check.passed and check.description == "no outcomes yet"
