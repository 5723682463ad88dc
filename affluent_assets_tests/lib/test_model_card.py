"""Group figures on a hand-made holdout, and the card that carries them."""

import numpy as np
import pandas as pd
import pytest

from affluent_assets.lib.model_card import age_band, group_metrics, model_card
from affluent_assets.lib.registry import RegisteredModel


def holdout():
    features = pd.DataFrame(
        {
            "age": [25, 28, 35, 40, 50, 55, 65, np.nan],
            "gn_occ": ["PM", "PM", "SAL", "SAL", "PM", None, "SAL", "PM"],
        }
    )
    labels = pd.Series([1, 0, 1, 1, 0, 1, 0, 1])
    probability = pd.Series([0.9, 0.8, 0.3, 0.7, 0.6, 0.2, 0.1, 0.95])
    return labels, probability, features


def test_age_bands_keep_blank_ages_apart():
    bands = age_band(pd.Series([12, 29.9, 30, 59, 60, np.nan]))
    assert bands.tolist() == ["under 30", "under 30", "30-44", "45-59", "60 and over", "unknown"]


def test_group_figures_at_the_threshold_by_hand():
    labels, probability, features = holdout()
    table = group_metrics(labels, probability, 0.5, features).set_index(["grouping", "group"])
    under_30 = table.loc[("age_band", "under 30")]  # flagged both, one AFFLUENT
    assert under_30["rows"] == 2 and under_30["positive_rate"] == 1.0
    assert under_30["precision"] == 0.5 and under_30["recall"] == 1.0
    middle = table.loc[("age_band", "30-44")]  # two AFFLUENT, one flagged
    assert middle["recall"] == 0.5 and middle["precision"] == 1.0
    assert table.loc[("age_band", "unknown"), "rows"] == 1
    pm = table.loc[("occupation", "PM")]  # rows 0,1,4,7: flagged all four, two AFFLUENT
    assert pm["positive_rate"] == 1.0 and pm["precision"] == 0.5 and pm["base_rate"] == 0.5
    blank = table.loc[("occupation", "blank")]  # one AFFLUENT, not flagged
    assert blank["recall"] == 0.0 and np.isnan(blank["precision"])
    assert table.loc[table.index.get_level_values(0) == "age_band", "rows"].sum() == 8


def test_the_card_names_version_figures_groups_and_limits():
    labels, probability, features = holdout()
    groups = group_metrics(labels, probability, 0.5, features)
    reliability = pd.DataFrame(
        {"customers": [4, 4], "mean_predicted": [0.2, 0.8], "observed_rate": [0.25, 0.75]}
    )
    metrics = dict.fromkeys(["roc_auc", "pr_auc", "brier_score", "recall", "precision", "f1"], 0.5)
    metrics["flagged_share"] = 0.3
    model = RegisteredModel("affluent_classifier", "7", "run", 0.42, [0.1])
    card = model_card(model, metrics, reliability, groups, {"train": 100, "holdout": 43})
    assert card.startswith("# Model card: affluent_classifier v7")
    flat = " ".join(card.split())
    assert "Train rows: 100; holdout rows: 43" in flat
    assert "Threshold 0.4200" in flat and "flags 30.0% of holdout customers" in flat
    assert "(weighted by rows): 0.050." in flat  # |0.2-0.25| and |0.8-0.75|
    assert "| age_band" in card and "No gender in the extract" in flat


@pytest.mark.parametrize("threshold", [0.0, 1.1])
def test_extreme_thresholds_flag_everyone_or_no_one(threshold):
    labels, probability, features = holdout()
    table = group_metrics(labels, probability, threshold, features)
    expected = 1.0 if threshold == 0.0 else 0.0
    assert (table["positive_rate"] == expected).all()
