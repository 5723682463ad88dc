"""Scoring: per-row contributions that add up to the model's margin, readable reason codes, the
candidate ranking and the segment profile."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from affluent_assets.lib.features import MODEL_FEATURES
from affluent_assets.lib.reasons import _push_texts, reason_codes
from affluent_assets.lib.scoring import (
    DISPLAY_NAMES,
    REASON_COUNT,
    age_band,
    feature_contributions,
    profile_segments,
    rank_candidates,
    score_features,
)
from affluent_assets.lib.training import (
    CalibratedModel,
    ModelSpec,
    assign_decile,
    build_pipeline,
    positive_weight,
    predict_probability,
)

REASON = re.compile(r"^(?P<name>[A-Za-z_ ]+) = (?P<value>.+) \((?P<contribution>[+-]\d+\.\d{2})\)$")


@pytest.fixture(scope="module")
def model(demo_model):
    """The calibrated XGBoost model as training hands it over."""
    return demo_model.model.model


@pytest.fixture(scope="module")
def sample(demo_model) -> pd.DataFrame:
    """Holdout rows (a non-default index) plus rows with odd values: blanks, age placeholder."""
    features = demo_model.features
    return features[~demo_model.is_train].head(60)


def _margin(pipeline, features: pd.DataFrame) -> np.ndarray:
    transformed = pipeline.named_steps["preprocess"].transform(features[MODEL_FEATURES])
    return pipeline.named_steps["model"].predict(transformed, output_margin=True)


def test_contributions_sum_to_the_margin(model, sample):
    pipeline = model.pipeline
    contributions, base = feature_contributions(model, sample)

    assert contributions.index.equals(sample.index)
    assert list(contributions.columns) == MODEL_FEATURES  # one-hot columns summed back
    assert base.shape == (len(sample),)
    total = contributions.sum(axis=1).to_numpy() + base
    np.testing.assert_allclose(total, _margin(pipeline, sample), atol=1e-4)
    raw = pipeline.predict_proba(sample[MODEL_FEATURES])[:, 1]
    np.testing.assert_allclose(total, np.log(raw / (1 - raw)), atol=1e-4)


@pytest.mark.parametrize(
    "spec",
    [
        ModelSpec("logistic_regression"),
        ModelSpec("random_forest", params={"n_estimators": 10, "max_depth": 6}),
    ],
    ids=lambda spec: spec.family,
)
def test_contributions_sum_to_the_raw_output_for_other_families(demo_model, sample, spec):
    train = demo_model.features[demo_model.is_train]
    y = demo_model.labels[demo_model.is_train]
    pipeline = build_pipeline(spec, positive_weight(y), seed=7).fit(train[MODEL_FEATURES], y)
    model = CalibratedModel(pipeline)

    contributions, base = feature_contributions(model, sample)

    assert list(contributions.columns) == MODEL_FEATURES
    total = contributions.sum(axis=1).to_numpy() + base
    X = sample[MODEL_FEATURES]
    if spec.family == "logistic_regression":  # log-odds
        np.testing.assert_allclose(total, pipeline.decision_function(X), atol=1e-6)
    else:  # probability
        np.testing.assert_allclose(total, pipeline.predict_proba(X)[:, 1], atol=1e-6)


def test_contributions_are_row_wise(model, sample):
    full, _ = feature_contributions(model, sample)
    part, _ = feature_contributions(model, sample.iloc[[7, 3]])
    pd.testing.assert_frame_equal(part, full.iloc[[7, 3]], atol=1e-6)


def test_reason_codes_format_and_order(model, sample):
    reasons = reason_codes(model, sample)
    contributions, _ = feature_contributions(model, sample)

    assert list(reasons.columns) == [f"reason_{i + 1}" for i in range(REASON_COUNT)]
    assert reasons.index.equals(sample.index)
    display_to_feature = {DISPLAY_NAMES.get(f, f): f for f in MODEL_FEATURES}
    for key, row in reasons.iterrows():
        parsed = [REASON.match(text) for text in row]
        assert all(parsed), row.tolist()
        names = [display_to_feature[m["name"]] for m in parsed]
        shown = [float(m["contribution"]) for m in parsed]
        assert shown == sorted(shown, reverse=True)
        # The named features are this row's largest contributions, shown rounded.
        expected = contributions.loc[key].sort_values(ascending=False, kind="stable")
        assert names == expected.index[:REASON_COUNT].tolist()
        np.testing.assert_allclose(shown, expected.iloc[:REASON_COUNT], atol=0.005 + 1e-9)


def test_reason_codes_show_contract_names_and_values(model, demo_model):
    row = demo_model.features.head(1).copy()
    row["asset_value"] = 123456.0
    row["num_prd"] = 4.0
    row["age"] = np.nan
    reasons = reason_codes(model, row, count=len(MODEL_FEATURES))
    texts = reasons.iloc[0].tolist()
    contributions, _ = feature_contributions(model, row)
    positive = int((contributions.iloc[0] > 0).sum())
    # Only features that push the score up are reasons; the rest of the columns stay blank.
    assert sum(t is not None for t in texts) == positive
    assert all(t is None for t in texts[positive:])
    shown = {REASON.match(t)["name"]: REASON.match(t)["value"] for t in texts[:positive]}
    expected = {"Asset value": "123,456", "NUM_PRD": "4", "C_AGE": "blank"}
    for name, value in expected.items():
        feature = {"Asset value": "asset_value", "NUM_PRD": "num_prd", "C_AGE": "age"}[name]
        if contributions.iloc[0][feature] > 0:
            assert shown[name] == value
    assert not {"asset_value", "num_prd", "age"} & set(shown)


def test_score_features(demo_model, sample):
    model = demo_model.model
    threshold = model.threshold.threshold
    scored = score_features(model.model, sample, threshold, model.decile_edges)

    assert list(scored.columns) == [
        "customer_key",
        "affluent_probability",
        "score_decile",
        "predicted_segment",
    ]
    assert scored["customer_key"].tolist() == sample["customer_key"].tolist()
    probability = predict_probability(model.model, sample).to_numpy()
    np.testing.assert_allclose(scored["affluent_probability"], probability)
    expected_segment = np.where(probability >= threshold, "AFFLUENT", "NORMAL")
    assert scored["predicted_segment"].tolist() == expected_segment.tolist()
    expected_decile = assign_decile(pd.Series(probability), model.decile_edges)
    assert scored["score_decile"].tolist() == expected_decile.tolist()


def test_rank_candidates_hand_example():
    scored = pd.DataFrame(
        {
            "customer_key": ["a", "b", "c", "d", "e", "f", "g"],
            "c_seg": ["NORMAL", "AFFLUENT", "NORMAL", "NORMAL", "NORMAL", "NORMAL", None],
            "affluent_probability": [0.80, 0.99, 0.50, 0.49, 0.90, 0.80, 0.95],
        },
        index=[10, 11, 12, 13, 14, 15, 16],
    )
    candidates = rank_candidates(scored, threshold=0.5)

    # NORMAL only (b is AFFLUENT, g unlabelled), at or above 0.5 (c is exactly 0.5; d is below),
    # best first, ties by key.
    assert candidates["customer_key"].tolist() == ["e", "a", "f", "c"]
    assert candidates["candidate_rank"].tolist() == [1, 2, 3, 4]
    assert candidates["candidate_rank"].dtype == "int64"
    assert candidates.columns[0] == "candidate_rank"
    assert candidates.index.tolist() == [0, 1, 2, 3]
    assert rank_candidates(scored, threshold=0.95).empty


def test_age_band():
    ages = pd.Series([18, 29.9, 30, 45, 59, 60, 70, 100, np.nan, 17, 101])
    assert age_band(ages).tolist() == [
        "18-29",
        "18-29",
        "30-39",
        "40-49",
        "50-59",
        "60-69",
        "70+",
        "70+",
        "unknown",
        "unknown",
        "unknown",
    ]


def test_profile_segments(demo_model):
    # As the candidate_segments asset builds it: clean columns plus cleaned age and deposits.
    customers = demo_model.clean.merge(
        demo_model.features[["customer_key", "age", "total_deposits"]], on="customer_key"
    )
    normal_keys = customers.loc[customers["c_seg"] == "NORMAL", "customer_key"]
    candidate_keys = normal_keys.iloc[::10]

    profile = profile_segments(customers, candidate_keys)

    assert list(profile.columns) == [
        "segment",
        "feature",
        "measure",
        "level",
        "value",
        "segment_customers",
    ]
    segments = ["hidden_affluent_candidates", "affluent", "normal_not_flagged"]
    assert profile["segment"].unique().tolist() == segments
    counts = profile[profile["measure"] == "count"].set_index("segment")["value"]
    n_affluent = (customers["c_seg"] == "AFFLUENT").sum()
    assert counts.to_dict() == {
        "hidden_affluent_candidates": len(candidate_keys),
        "affluent": n_affluent,
        "normal_not_flagged": len(normal_keys) - len(candidate_keys),
    }
    shares = profile[profile["measure"] == "share"]
    sums = shares.groupby(["segment", "feature"])["value"].sum()
    assert set(sums.index.get_level_values("feature")) == {"gn_occ", "c_hse", "c_edu", "age_band"}
    assert len(sums) == 3 * 4
    np.testing.assert_allclose(sums.to_numpy(), 1.0)
    # Blanks are a level of their own, so every customer is counted.
    assert "(blank)" in set(shares.loc[shares["feature"] == "c_edu", "level"])

    medians = profile[profile["measure"] == "median"].set_index(["segment", "feature"])["value"]
    affluent = customers[customers["c_seg"] == "AFFLUENT"]
    assert medians["affluent", "asset_value"] == pytest.approx(affluent["asset_value"].median())
    present = profile[profile["measure"] == "share_present"].set_index(["segment", "feature"])
    assert present.loc[("affluent", "mthtd"), "value"] == pytest.approx(
        affluent["mthtd"].notna().mean()
    )


def test_push_texts_are_pythons_own_format():
    """The pushes' texts come from a table of cents; Python rounds a float's exact value, so
    pushes at or near a half cent, tiny ones and huge ones must read as Python writes them."""
    rng = np.random.default_rng(7)
    ties = np.arange(1, 20_000) / 1000 + 0.0005  # x.xx5: half a cent, in binary just off it
    pushes = np.concatenate(
        [
            rng.normal(0, 1, 50_000),
            ties,
            [0.125, 0.005, 1.005, 2.675, 1e-12, 0.004999999, 0.0, -0.25, np.nan, 2_000.125],
        ]
    )
    expected = [f"{p:+.2f}" if p > 0 else None for p in pushes.tolist()]
    assert _push_texts(pushes).tolist() == expected
    odd = np.array([0.5, 5e6, np.inf, 2.675] * 2_000)  # many rows: the table's path
    assert _push_texts(odd).tolist()[:4] == ["+0.50", "+5000000.00", "+inf", "+2.67"]
    assert _push_texts(odd[:4]).tolist() == ["+0.50", "+5000000.00", "+inf", "+2.67"]
