import numpy as np
import pandas as pd
import pytest

from affluent_assets.lib.demo_data import generate_customers
from affluent_assets.lib.drift import (
    DRIFT_FEATURES,
    DriftAccumulator,
    DriftReference,
    drift_report,
    population_stability,
)
from affluent_assets.lib.features import build_features, clean_customers


def features_of(rows: int, seed: int) -> pd.DataFrame:
    return build_features(clean_customers(generate_customers(rows, seed=seed), "demo"))


def test_same_population_is_stable():
    report = drift_report(features_of(8000, 1), features_of(4000, 2))
    assert list(report["feature"].sort_values()) == sorted(DRIFT_FEATURES)
    assert (report["psi"] < 0.10).all()
    assert set(report["shift"]) == {"stable"}


def test_shifted_balances_and_new_gaps_are_significant():
    training = features_of(8000, 1)
    batch = features_of(4000, 2)
    batch["asset_value"] = batch["asset_value"] * 20 + 50_000
    batch.loc[batch.index[:2000], "mthcasa"] = np.nan  # half the batch loses its CASA data
    report = drift_report(training, batch).set_index("feature")
    assert report.loc["asset_value", "shift"] == "significant"
    assert report.loc["mthcasa", "psi"] > 0.10
    assert report.loc["num_prd", "shift"] == "stable"


def test_psi_matches_hand_computation_for_levels():
    expected = pd.Series(["A"] * 50 + ["B"] * 50)
    actual = pd.Series(["A"] * 80 + ["B"] * 20)
    hand = (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5)
    assert population_stability(expected, actual) == pytest.approx(hand)


def test_unseen_level_counts_as_drift_instead_of_failing():
    expected = pd.Series(["A"] * 100)
    actual = pd.Series(["A"] * 50 + ["NEW"] * 50)
    assert population_stability(expected, actual) > 0.25


@pytest.mark.parametrize("chunk_rows", [1, 7, 999, 5000])
def test_chunked_report_equals_the_whole_batch_report(chunk_rows):
    training = features_of(6000, 3)
    batch = features_of(3001, 4)
    batch.loc[2990:, "gn_occ"] = "ASTRONAUT"  # a level unseen in training, only in the last chunk
    batch.loc[:50, "asset_value"] = np.nan
    whole = drift_report(training, batch)
    accumulator = DriftAccumulator(DriftReference.from_training(training))
    for start in range(0, len(batch), chunk_rows):
        accumulator.add(batch.iloc[start : start + chunk_rows])
    chunked = accumulator.report()
    assert accumulator.rows == len(batch)
    assert chunked["feature"].tolist() == whole["feature"].tolist()
    np.testing.assert_allclose(chunked["psi"], whole["psi"], rtol=0, atol=1e-12)
    assert chunked["shift"].tolist() == whole["shift"].tolist()


def test_reference_with_an_all_blank_training_column():
    training = features_of(500, 5).assign(mthtd=np.nan)
    batch = features_of(300, 6)
    accumulator = DriftAccumulator(DriftReference.from_training(training))
    accumulator.add(batch)
    report = accumulator.report().set_index("feature")
    assert np.isfinite(report["psi"]).all()
    assert report.loc["mthtd", "shift"] == "significant"  # values where training had none
