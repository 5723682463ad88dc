"""Holdout metrics, precision at a score, the lift table and the charts, against hand-computed
answers and brute force."""

from __future__ import annotations

import base64
import json
import re
from itertools import product

import numpy as np
import pandas as pd
import pytest

from affluent_assets.lib.evaluation import (
    HoldoutCurve,
    capacity_count,
    classification_metrics,
    importance_plot,
    lift_plot,
    lift_table,
    operating_points,
    precision_at_scores,
    precision_recall_plot,
    reliability_table,
    threshold_for_capacity,
)

# 20 customers, scores 1.00, 0.95, ..., 0.05 (distinct, descending); 6 AFFLUENT.
Y = pd.Series([1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0])
P = pd.Series([(20 - i) / 20 for i in range(20)])


def _roc_auc_brute_force(y, p) -> float:
    pos = [s for s, t in zip(p, y, strict=True) if t == 1]
    neg = [s for s, t in zip(p, y, strict=True) if t == 0]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_holdout_metrics_hand_example():
    metrics = classification_metrics(Y, P, threshold=0.625)  # flags the top 8 rows

    assert metrics["true_positives"] == 4
    assert metrics["false_positives"] == 4
    assert metrics["false_negatives"] == 2
    assert metrics["true_negatives"] == 10
    assert metrics["recall"] == pytest.approx(4 / 6)
    assert metrics["precision"] == pytest.approx(4 / 8)
    assert metrics["f1"] == pytest.approx(4 / 7)  # 2PR/(P+R) = 2*0.5*(2/3)/(7/6)
    assert metrics["flagged_share"] == pytest.approx(8 / 20)
    assert metrics["base_rate"] == pytest.approx(6 / 20)
    assert metrics["rows"] == 20
    assert metrics["threshold"] == 0.625
    # Positives at ranks 1, 2, 4, 7, 12, 19.
    assert metrics["pr_auc"] == pytest.approx((1 + 1 + 3 / 4 + 4 / 7 + 5 / 12 + 6 / 19) / 6)
    assert metrics["roc_auc"] == pytest.approx(_roc_auc_brute_force(Y, P))
    # Top 5% = 1 row, 10% = 2 rows, 20% = 4 rows (1, 1, 0, 1).
    assert metrics["recall_top_5pct"] == pytest.approx(1 / 6)
    assert metrics["precision_top_5pct"] == pytest.approx(1.0)
    assert metrics["recall_top_10pct"] == pytest.approx(2 / 6)
    assert metrics["precision_top_10pct"] == pytest.approx(1.0)
    assert metrics["recall_top_20pct"] == pytest.approx(3 / 6)
    assert metrics["precision_top_20pct"] == pytest.approx(3 / 4)
    assert all(isinstance(value, float) for value in metrics.values())


def test_holdout_metrics_threshold_is_inclusive():
    metrics = classification_metrics(Y, P, threshold=0.65)  # the 8th score exactly
    assert metrics["true_positives"] + metrics["false_positives"] == 8


def test_holdout_metrics_order_of_rows_does_not_matter():
    shuffled = np.random.default_rng(0).permutation(20)
    original = classification_metrics(Y, P, 0.625)
    again = classification_metrics(
        Y[shuffled].reset_index(drop=True), P[shuffled].reset_index(drop=True), 0.625
    )
    assert again == pytest.approx(original)


def test_holdout_metrics_nothing_flagged():
    metrics = classification_metrics(Y, P, threshold=2.0)
    assert metrics["true_positives"] == 0 and metrics["false_positives"] == 0
    assert metrics["precision"] == 0.0 and metrics["recall"] == 0.0 and metrics["f1"] == 0.0
    assert metrics["flagged_share"] == 0.0


def _precision_brute_force(y, p, s) -> tuple[float, float]:
    called = [t for score, t in zip(p, y, strict=True) if score >= s]
    recall = sum(called) / max(1, sum(y))
    return (sum(called) / len(called) if called else np.nan), recall


def test_precision_at_scores_matches_brute_force():
    rng = np.random.default_rng(5)
    y = pd.Series((rng.random(200) < 0.2).astype(int))
    p = pd.Series(np.round(rng.random(200) * 0.7 + 0.3 * y, 2))  # many ties
    queries = pd.Series(
        [*p.sample(15, random_state=1), 0.0, -1.0, 1.5, p.max(), p.min(), 0.5],
        index=[f"q{i}" for i in range(21)],
    )

    result = precision_at_scores(y, p, queries)

    assert list(result.columns) == ["expected_precision", "expected_recall"]
    assert result.index.tolist() == queries.index.tolist()
    for name, s in queries.items():
        precision, recall = _precision_brute_force(y, p, s)
        if np.isnan(precision):
            assert np.isnan(result.loc[name, "expected_precision"]), name
        else:
            assert result.loc[name, "expected_precision"] == pytest.approx(precision), name
        assert result.loc[name, "expected_recall"] == pytest.approx(recall), name


def test_precision_at_scores_hand_example():
    result = precision_at_scores(Y, P, pd.Series([1.0, 0.625, 0.65, 0.0, 1.01]))
    assert result["expected_precision"].iloc[:4].tolist() == pytest.approx([1.0, 0.5, 0.5, 0.3])
    assert result["expected_recall"].tolist() == pytest.approx([1 / 6, 4 / 6, 4 / 6, 1.0, 0.0])
    assert np.isnan(result["expected_precision"].iloc[4])


def test_lift_table_hand_example():
    shuffled = np.random.default_rng(2).permutation(20)  # the table sorts by score itself
    table = lift_table(Y[shuffled], P[shuffled], bins=10)

    assert table["decile"].tolist() == list(range(1, 11))
    assert table["customers"].tolist() == [2] * 10
    assert table["affluent"].tolist() == [2, 1, 0, 1, 0, 1, 0, 0, 0, 1]
    rates = np.array([1, 0.5, 0, 0.5, 0, 0.5, 0, 0, 0, 0.5])
    np.testing.assert_allclose(table["affluent_rate"], rates)
    np.testing.assert_allclose(table["lift"], rates / 0.3)
    np.testing.assert_allclose(
        table["cumulative_recall"], np.array([2, 3, 3, 4, 4, 5, 5, 5, 5, 6]) / 6
    )
    np.testing.assert_allclose(table["min_score"], [(19 - 2 * k) / 20 for k in range(10)])


@pytest.mark.parametrize(("rows", "bins"), [(1000, 10), (997, 10), (35, 5)])
def test_lift_table_sums(rows, bins):
    rng = np.random.default_rng(rows)
    y = (rng.random(rows) < 0.2).astype(int)
    p = rng.random(rows) * 0.5 + 0.4 * y
    table = lift_table(y, p, bins=bins)
    assert table["decile"].tolist() == list(range(1, bins + 1))
    assert table["customers"].sum() == rows
    assert table["customers"].max() - table["customers"].min() <= 1
    assert table["affluent"].sum() == y.sum()
    assert table["cumulative_recall"].iloc[-1] == pytest.approx(1.0)
    assert table["cumulative_recall"].is_monotonic_increasing
    # Customer-weighted mean lift is 1 by definition.
    assert np.average(table["lift"], weights=table["customers"]) == pytest.approx(1.0)
    assert table["min_score"].is_monotonic_decreasing
    assert table["lift"].iloc[0] > 1 > table["lift"].iloc[-1]  # the scores carry signal


def _png_from_markdown(markdown: str, title: str) -> bytes:
    match = re.fullmatch(
        rf"!\[{re.escape(title)}\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown
    )
    assert match, markdown[:120]
    return base64.b64decode(match.group(1), validate=True)


def test_precision_recall_plot_is_markdown_png():
    png = _png_from_markdown(precision_recall_plot(Y, P, 0.625), "precision-recall curve")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 1000


def test_lift_plot_is_markdown_png():
    png = _png_from_markdown(lift_plot(lift_table(Y, P)), "lift chart")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 1000


def test_plots_close_their_figures():
    import matplotlib.pyplot as plt

    before = len(plt.get_fignums())
    precision_recall_plot(Y, P, 0.5)
    lift_plot(lift_table(Y, P))
    assert len(plt.get_fignums()) == before


# --- calibration and operating points ---------------------------------------------------------


def test_reliability_table_hand_example():
    y = [0, 1, 0, 0, 1, 1, 1]
    p = [0.05, 0.08, 0.55, 0.51, 0.59, 1.0, 0.95]
    table = reliability_table(y, p, bins=10)
    assert table["bin_from"].tolist() == pytest.approx([0.0, 0.5, 0.9])
    assert table["bin_to"].tolist() == pytest.approx([0.1, 0.6, 1.0])
    assert table["customers"].tolist() == [2, 3, 2]  # a score of exactly 1.0 is in the last bin
    assert table["mean_predicted"].tolist() == pytest.approx([0.065, 0.55, 0.975])
    assert table["observed_rate"].tolist() == pytest.approx([0.5, 1 / 3, 1.0])
    assert table["gap"].tolist() == pytest.approx([0.435, 1 / 3 - 0.55, 0.025])


@pytest.mark.parametrize(
    ("capacity", "normal", "expected"),
    [("500", 10_000, 500), (" 100 ", 50, 100), ("5%", 1000, 50), ("10%", 1234, 123), ("1%", 10, 1)],
)
def test_capacity_count(capacity, normal, expected):
    assert capacity_count(capacity, normal) == expected


@pytest.mark.parametrize("capacity", ["0", "-5", "many"])
def test_capacity_count_rejects_nonsense(capacity):
    with pytest.raises(ValueError):
        capacity_count(capacity, 100)


def test_threshold_for_capacity():
    scores = pd.Series([0.2, 0.9, 0.5, 0.7, 0.7, 0.1])
    assert threshold_for_capacity(scores, 1) == 0.9
    assert threshold_for_capacity(scores, 3) == 0.7
    assert threshold_for_capacity(scores, 4) == 0.5
    assert threshold_for_capacity(scores, 100) == 0.1  # more capacity than customers: everyone
    assert threshold_for_capacity(pd.Series([], dtype="float64"), 5) == 1.0


def test_operating_points():
    normal = pd.Series(np.arange(1, 201) / 200)  # 0.005 .. 1.0
    table = operating_points(Y, P, normal, thresholds=(0.5, 0.625), capacities=("10", "5%"))

    assert table["policy"].tolist() == ["threshold", "threshold", "capacity", "capacity"]
    assert table["setting"].tolist() == ["0.50", "0.62", "top 10", "top 5%"]
    assert table["threshold"].tolist() == pytest.approx([0.5, 0.625, 191 / 200, 191 / 200])
    assert table["normal_flagged"].tolist() == [101, 76, 10, 10]
    expected = precision_at_scores(Y, P, table["threshold"])
    np.testing.assert_allclose(table["expected_precision"], expected["expected_precision"])
    np.testing.assert_allclose(table["expected_recall"], expected["expected_recall"])
    assert table.loc[1, "expected_precision"] == pytest.approx(0.5)  # the hand example above


def test_importance_plot_is_markdown_png():
    importance = pd.Series({"NUM_PRD": 0.8, "Asset value": 0.5, "C_AGE": 0.1})
    png = _png_from_markdown(importance_plot(importance), "feature importance")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_holdout_curve_round_trips_and_matches_the_rows():
    rng = np.random.default_rng(4)
    y = pd.Series(rng.integers(0, 2, 500))
    p = pd.Series(np.round(rng.random(500), 2))  # ties: many rows share a score
    curve = HoldoutCurve.from_holdout(y, p)
    again = HoldoutCurve.from_dict(json.loads(json.dumps(curve.to_dict())))
    queries = pd.Series([1.5, 0.99, 0.5, 0.333, 0.0, -1.0])
    expected = pd.DataFrame(
        {
            "expected_precision": [y[p >= q].mean() if (p >= q).any() else np.nan for q in queries],
            "expected_recall": [y[p >= q].sum() / y.sum() for q in queries],
        }
    )
    pd.testing.assert_frame_equal(again.at(queries), expected)
    assert np.isnan(curve.at([1.5])["expected_precision"][0])  # above every score: no one called


def test_thinned_holdout_curve_keeps_both_ends_and_exact_figures_at_kept_cuts():
    rng = np.random.default_rng(5)
    y = pd.Series(rng.integers(0, 2, 5000))
    p = pd.Series(rng.random(5000))
    full = HoldoutCurve.from_holdout(y, p, max_points=None)
    thin = HoldoutCurve.from_holdout(y, p, max_points=100)
    assert len(full.cuts) == 5000 and len(thin.cuts) == 100
    assert thin.cuts[0] == full.cuts[0] and thin.cuts[-1] == full.cuts[-1]
    assert thin.called[0] == 1 and thin.called[-1] == 5000 and thin.caught[-1] == y.sum()
    pd.testing.assert_frame_equal(thin.at(thin.cuts), full.at(thin.cuts))
    pd.testing.assert_frame_equal(thin.at(thin.next_lower), full.at(thin.cuts[1:]))


def _fewest_kept_calls_covering(p, kept_cuts, s) -> float:
    """Brute force of the thinned rule: of the kept cuts whose calls include everyone scored
    >= s, the one calling the fewest rows."""
    called_at_s = {i for i, score in enumerate(p) if score >= s}
    covering = [c for c in kept_cuts if called_at_s <= {i for i, x in enumerate(p) if x >= c}]
    return max(covering)


def test_thinned_holdout_curve_calls_at_least_everyone_scored_at_or_above_the_query():
    rng = np.random.default_rng(8)
    y = pd.Series((rng.random(300) < 0.3).astype(int))
    p = pd.Series(np.round(rng.random(300), 2))  # ~100 distinct scores, ties
    full = HoldoutCurve.from_holdout(y, p, max_points=None)
    thin = HoldoutCurve.from_holdout(y, p, max_points=12)
    assert len(thin.cuts) == 12
    queries = [*full.cuts, *(full.cuts[1:] + full.cuts[:-1]) / 2, 0.0, -1.0]
    expected = full.at([_fewest_kept_calls_covering(p, thin.cuts, s) for s in queries])
    pd.testing.assert_frame_equal(thin.at(queries), expected)
    # Where no kept figures are exact, recall never undercounts those scored >= s.
    exact = precision_at_scores(y, p, pd.Series(queries))
    assert (thin.at(queries)["expected_recall"] >= exact["expected_recall"] - 1e-12).all()


def test_thinned_holdout_curve_reads_exactly_just_below_a_kept_cut():
    y = pd.Series([1, 0, 1, 0, 0, 1, 0])
    p = pd.Series([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    thin = HoldoutCurve.from_holdout(y, p, max_points=3)  # keeps 0.9, 0.6, 0.3
    assert thin.cuts.tolist() == [0.9, 0.6, 0.3]
    assert thin.next_lower.tolist() == [0.8, 0.5]
    result = thin.at([0.95, 0.9, 0.85, 0.8, 0.65, 0.6, 0.55, 0.45, 0.3, 0.1])
    # 0.85 and 0.55: no holdout score in [0.85, 0.9) or [0.55, 0.6), so those kept cuts are
    # exact. 0.8, 0.65 and 0.45 fall among dropped cuts and read the next kept cut below,
    # which calls everyone scored at or above them and a few more.
    top, middle, everyone = 1.0, 2 / 4, 3 / 7
    assert np.isnan(result["expected_precision"][0])
    assert result["expected_precision"][1:].tolist() == pytest.approx(
        [top, top, middle, middle, middle, middle, everyone, everyone, everyone]
    )
    assert result["expected_recall"].tolist() == pytest.approx(
        [0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 2 / 3, 1, 1, 1]
    )


def test_holdout_curve_unthinned_is_precision_at_scores_and_survives_json():
    rng = np.random.default_rng(11)
    y = pd.Series((rng.random(1000) < 0.25).astype(int))
    p = pd.Series(np.round(rng.random(1000) * 0.6 + 0.3 * y, 3))
    queries = pd.Series(np.linspace(-0.1, 1.1, 301), index=[f"c{i}" for i in range(301)])
    curve = HoldoutCurve.from_holdout(y, p, max_points=None)
    document = json.loads(json.dumps(curve.to_dict(), allow_nan=False))
    assert document["version"] == 1
    assert all(type(value) is float for value in document["cuts"] + document["next_lower"])
    assert all(type(value) is int for value in document["called"] + document["caught"])
    again = HoldoutCurve.from_dict(document)
    assert again.to_dict() == curve.to_dict()
    pd.testing.assert_frame_equal(again.at(queries), precision_at_scores(y, p, queries))


def test_holdout_curve_read_from_a_document_without_next_lower():
    thin = HoldoutCurve.from_holdout(Y, P, max_points=5)
    document = thin.to_dict()
    del document["next_lower"]
    older = HoldoutCurve.from_dict(document)
    np.testing.assert_array_equal(older.next_lower, thin.cuts[1:])
    pd.testing.assert_frame_equal(older.at(thin.cuts), thin.at(thin.cuts))


def test_holdout_curve_rejects_unknown_versions_and_mismatched_lists():
    document = HoldoutCurve.from_holdout(Y, P).to_dict()
    with pytest.raises(ValueError, match="version"):
        HoldoutCurve.from_dict({**document, "version": 2})
    with pytest.raises(ValueError, match="length"):
        HoldoutCurve.from_dict({**document, "called": document["called"][:-1]})
    with pytest.raises(ValueError, match="max_points"):
        HoldoutCurve.from_holdout(Y, P, max_points=1)


def test_holdout_curve_default_keeps_at_most_5000_cuts():
    p = pd.Series(np.arange(6000) / 6000)
    curve = HoldoutCurve.from_holdout(pd.Series(np.arange(6000) % 2), p)
    assert len(curve.cuts) == 5000 and curve.cuts[0] == p.max() and curve.cuts[-1] == 0.0


def test_holdout_curve_query_above_the_top_score_calls_no_one():
    curve = HoldoutCurve.from_holdout(Y, P)
    result = curve.at(pd.Series([1.01, np.inf, np.nan, 1.0, -np.inf], index=list("abcde")))
    assert result.index.tolist() == list("abcde")
    assert result["expected_precision"].isna().tolist() == [True, True, True, False, False]
    assert result["expected_recall"].tolist() == pytest.approx([0, 0, 0, 1 / 6, 1])


def test_empty_holdout_curve_calls_no_one():
    curve = HoldoutCurve.from_holdout(pd.Series([], dtype=int), pd.Series([], dtype=float))
    assert curve.to_dict()["cuts"] == [] and curve.positives == 0
    result = HoldoutCurve.from_dict(curve.to_dict()).at([0.5, 0.0])
    assert result["expected_precision"].isna().all()
    assert result["expected_recall"].tolist() == [0.0, 0.0]


def test_holdout_curve_of_a_single_affluent_class():
    curve = HoldoutCurve.from_holdout(pd.Series([1, 1, 1]), pd.Series([0.7, 0.7, 0.2]))
    assert curve.cuts.tolist() == [0.7, 0.2] and curve.called.tolist() == [2, 3]
    result = curve.at([0.8, 0.7, 0.5, 0.2])
    assert result["expected_precision"][1:].tolist() == [1.0, 1.0, 1.0]
    assert result["expected_recall"].tolist() == pytest.approx([0, 2 / 3, 2 / 3, 1])


def test_holdout_curve_of_a_single_class():
    curve = HoldoutCurve.from_holdout(pd.Series([0, 0, 0]), pd.Series([0.2, 0.5, 0.9]))
    figures = curve.at([0.5])
    assert figures["expected_precision"][0] == 0.0 and figures["expected_recall"][0] == 0.0
