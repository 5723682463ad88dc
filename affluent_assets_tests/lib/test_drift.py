import numpy as np
import pandas as pd
import pytest

from affluent_assets.lib.demo_data import generate_customers
from affluent_assets.lib.drift import (
    DRIFT_FEATURES,
    SIGNIFICANT_PSI,
    DriftAccumulator,
    DriftReference,
    drift_report,
    population_stability,
    significance_threshold,
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


@pytest.mark.parametrize("rows", [30, 60])
def test_a_small_batch_of_the_training_population_is_not_flagged(rows):
    training = features_of(8000, 1)
    # Every seed from the same generator: chance alone gives small batches PSIs above 0.25.
    worst = [drift_report(training, features_of(rows, seed)).iloc[0] for seed in range(10, 20)]
    assert max(row["psi"] for row in worst) > 0.10  # so the raised bar is what keeps them quiet
    assert all(row["shift"] != "significant" for row in worst)
    assert all(row["threshold"] > SIGNIFICANT_PSI for row in worst)


@pytest.mark.parametrize("rows", [60, 4000])
def test_a_shifted_batch_is_flagged_whatever_its_size(rows):
    batch = features_of(rows, 3)
    batch["age"] = batch["age"] + 15
    report = drift_report(features_of(8000, 1), batch).set_index("feature")
    assert report.loc["age", "shift"] == "significant"


def test_the_bar_is_the_common_reading_for_large_batches_and_rises_for_small_ones():
    assert significance_threshold(11, 100_000, 46_000) == SIGNIFICANT_PSI
    assert significance_threshold(11, 30, 46_000) > significance_threshold(11, 60, 46_000) > 0.4
    assert significance_threshold(11, 0, 46_000) == float("inf")
