"""Landed lists carry their own estimate and a control group; model_outcomes sets estimated,
expected and realized side by side, warns when calibration breaks for a population, and
measures the campaign's uplift against the control group. Real landing runs, a real warehouse
and MLflow store (defs/conftest.py)."""

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from affluent_assets.defs.alerts.sensors import check_alerts_for
from affluent_assets.defs.monitoring.outcomes import batch_is_labelled, build_labelled_batch_sensor
from affluent_assets.lib import lake
from affluent_assets.names import UPLIFT_TABLE
from affluent_assets_tests.defs.conftest import register_tiny_model
from affluent_assets_tests.defs.test_landing_runs import demo, land, query
from affluent_assets_tests.defs.test_outcomes import check_named, materialize_outcomes

ROWS = 1500


def test_the_control_group_and_estimates_do_not_depend_on_how_the_list_is_chunked(landing_stores):
    """The draw is made over the whole list and read back chunk by chunk, rows repeated exactly
    left out: small chunks give every customer the same group and estimate as one chunk."""
    stores = landing_stores
    frame = demo(rows=ROWS, seed=72)
    frame = pd.concat([frame, frame.iloc[[3, 40, 41]]], ignore_index=True)  # three repeats
    land(stores, "chunked.csv", frame)
    columns = ["customer_key", "group", "estimated_precision", "estimated_precision_low"]
    listed = "select * from batch_candidates order by customer_key"
    assert stores.run("chunked.csv", chunk_rows=37).success
    small = query(stores, listed)[columns]
    assert stores.run("chunked.csv").success
    whole = query(stores, listed)[columns]
    assert len(whole) > 100 and set(whole["group"]) == {"campaign", "control"}
    pd.testing.assert_frame_equal(small, whole)


def test_a_landed_list_holds_back_a_control_group_and_estimates_itself(landing_stores):
    stores = landing_stores
    land(stores, "may.csv", rows=ROWS, seed=71)
    assert stores.run("may.csv").success
    listed = query(stores, "select * from batch_candidates order by affluent_probability desc")
    control = listed[listed["group"] == "control"]
    assert set(listed["group"]) == {"campaign", "control"}
    assert len(control) == round(0.10 * len(listed)) and control["customer_key"].is_unique
    # the first candidate's own estimate is its score, not a holdout handful's 100%
    top = listed.iloc[0]
    assert top["estimated_precision"] == pytest.approx(top["affluent_probability"])
    assert top["estimated_precision_low"] <= top["estimated_precision"] <= 1
    assert listed["estimated_precision"].is_monotonic_decreasing
    kept = query(stores, """select customer_key from batch_candidate_history
                            where "group" = 'control'""")  # fmt: skip
    assert set(kept["customer_key"]) == set(control["customer_key"])

    scores = query(stores, "select * from batch_scores")
    flagged = scores.loc[scores["predicted_segment"] == "AFFLUENT", "affluent_probability"]
    estimates = query(stores, "select * from batch_estimates order by flagged")
    at_threshold = estimates[estimates["policy"] == "threshold"].iloc[0]
    assert at_threshold["flagged"] == len(flagged)
    assert at_threshold["estimated_precision"] == pytest.approx(flagged.mean())
    assert at_threshold["precision_low"] < flagged.mean() < at_threshold["precision_high"]
    assert 0 < at_threshold["holdout_precision"] < 1
    capacities = estimates.loc[estimates["policy"] == "capacity", "setting"]
    assert set(capacities) == {"top 100", "top 500", "top 1000", "top 5%", "top 10%"}
    top_5pct = estimates[estimates["setting"] == "top 5%"].iloc[0]  # 75 of 1,500 rows
    assert top_5pct["flagged"] == 75


def _labelled(seed: int, affluent_share: float | None = None) -> pd.DataFrame:
    """A labelled batch; with `affluent_share`, that share of every row turned AFFLUENT: a
    population where far more customers upgrade than their scores say (under-calibrated)."""
    frame = demo(rows=ROWS, seed=seed, label=True)
    if affluent_share is not None:
        turned = np.random.default_rng(seed).random(len(frame)) < affluent_share
        frame.loc[turned, "C_seg"] = "AFFLUENT"
    return frame


def test_a_shifted_batch_trips_the_calibration_warning(landing_stores, tmp_path):
    stores = landing_stores
    # its own model: other tests overwrite the session model's holdout figures
    stores.models = register_tiny_model(tmp_path / "models")
    land(stores, "like.csv", _labelled(72))
    assert stores.run("like.csv").success
    calibrated = materialize_outcomes(stores, min_flagged=50, estimate_margin=0.2)
    [row] = calibrated.output_for_node("model_outcomes").to_dict(orient="records")
    assert row["estimated_low"] <= row["realized_precision"] <= row["estimated_high"]
    assert check_named(calibrated, "calibration").passed

    land(stores, "shifted.csv", _labelled(73, affluent_share=0.5))
    assert stores.run("shifted.csv").success
    shifted = materialize_outcomes(stores, min_flagged=50, estimate_margin=0.2)
    check = check_named(shifted, "calibration")
    assert not check.passed and "realized outside the estimate's interval" in check.description
    run = stores.instance.get_run_by_id(shifted.run_id)
    kinds = {alert.kind for alert in check_alerts_for(stores.instance, run, "http://ui")}
    assert "calibration_broken" in kinds


def test_uplift_against_the_control_group_of_the_list(landing_stores, tmp_path):
    stores = landing_stores
    land(stores, "june.csv", rows=ROWS, seed=74)
    assert stores.run("june.csv").success
    listed = query(stores, "select batch_key, customer_key, model_version, \"group\","
                           " affluent_probability from batch_candidates")  # fmt: skip
    rng = np.random.default_rng(74)
    lift = np.where(listed["group"] == "control", 0.0, 0.3)
    listed["upgraded"] = rng.random(len(listed)) < listed["affluent_probability"] + lift
    folder = tmp_path / "outcomes"
    folder.mkdir()
    listed.drop(columns=["group", "affluent_probability"]).assign(
        upgraded=listed["upgraded"].map({True: "yes", False: "no"})
    ).to_csv(folder / "june-results.csv", index=False)

    result = materialize_outcomes(stores, outcomes_dir=str(folder), min_flagged=10)
    [row] = result.output_for_node("model_outcomes").to_dict(orient="records")
    called = listed[listed["group"] == "campaign"]
    control = listed[listed["group"] == "control"]
    assert row["flagged"] == len(called)  # the held back were not called
    assert row["realized_precision"] == pytest.approx(called["upgraded"].mean())
    uplift = query(stores, f"select * from {UPLIFT_TABLE} where scope = 'overall'").iloc[0]
    assert (uplift["called"], uplift["control"]) == (len(called), len(control))
    difference = called["upgraded"].mean() - control["upgraded"].mean()
    assert uplift["uplift"] == pytest.approx(difference)
    assert uplift["uplift_low"] < 0.3 < uplift["uplift_high"] and uplift["uplift_low"] > 0
    metadata = result.asset_materializations_for_node("model_outcomes")[0].metadata
    assert "data:image/png;base64" in metadata["qini"].value
    assert "decile 10" in metadata["uplift"].value


def test_an_outcome_file_without_control_rows_says_so(landing_stores, tmp_path):
    stores = landing_stores
    land(stores, "july.csv", rows=600, seed=75)
    assert stores.run("july.csv").success
    listed = query(stores, "select batch_key, customer_key, model_version from batch_candidates"
                           " where \"group\" = 'campaign'")  # fmt: skip
    folder = tmp_path / "outcomes"
    folder.mkdir()
    listed.assign(upgraded="no").to_csv(folder / "july.csv", index=False)
    result = materialize_outcomes(stores, outcomes_dir=str(folder))
    metadata = result.asset_materializations_for_node("model_outcomes")[0].metadata
    assert metadata["uplift"].value.startswith("no control rows")
    assert query(stores, f"select count(*) as n from {UPLIFT_TABLE}")["n"][0] == 0


def test_a_labelled_batch_that_lands_refreshes_the_figures(landing_stores):
    stores = landing_stores
    land(stores, "labelled.csv", rows=300, seed=76, label=True)
    land(stores, "plain.csv", rows=300, seed=77)
    sensor = build_labelled_batch_sensor(lake_dir=str(stores.lake))
    answers = {}
    for name in ("labelled.csv", "plain.csv"):
        result = stores.run(name)
        assert result.success
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_event=result.get_run_success_event(),
            dagster_instance=stores.instance,
            dagster_run=stores.instance.get_run_by_id(result.run_id),
        )
        answers[name] = sensor(context)
    assert batch_is_labelled(str(stores.lake), "labelled.csv")
    assert not batch_is_labelled(str(stores.lake), "plain.csv")
    assert isinstance(answers["labelled.csv"], dg.RunRequest)
    assert isinstance(answers["plain.csv"], dg.SkipReason)
    assert not lake.batch_file(stores.lake, lake.SCORES, "nothing.csv").exists()
    assert not batch_is_labelled(str(stores.lake), "nothing.csv")


def _check(result, name: str):
    return next(c for c in result.get_asset_check_evaluations() if c.check_name == name)


def test_a_batch_unlike_the_holdout_warns_when_it_lands(landing_stores):
    """A wealthy branch: customers chosen on what the model sees, so their scores still hold,
    but the holdout's figure at the threshold no longer speaks for them."""
    stores = landing_stores
    land(stores, "like.csv", rows=ROWS, seed=79)
    like = stores.run("like.csv")
    assert like.success and _check(like, "estimate_vs_holdout").passed
    pool = demo(rows=4 * ROWS, seed=80)
    wealthy = pool[pool["Asset value"].rank(pct=True) > 0.75].reset_index(drop=True)
    land(stores, "wealthy.csv", wealthy)
    shifted = stores.run("wealthy.csv")
    check = _check(shifted, "estimate_vs_holdout")
    assert shifted.success and not check.passed
    assert "not the holdout's population: the holdout's figure understates" in check.description
    run = stores.instance.get_run_by_id(shifted.run_id)
    [alert] = check_alerts_for(stores.instance, run, "http://ui")
    assert alert.kind == "estimate_parted_from_holdout"
