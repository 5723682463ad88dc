"""Uplift from a campaign with a control group: simulated outcomes with a known effect are
recovered inside the interval about nine times in ten, overall and by decile."""

import numpy as np
import pandas as pd

from affluent_assets.lib import uplift
from affluent_assets.lib.control_group import CONTROL, ControlPolicy, assign_groups

EFFECT = 0.05


def campaign(seed: int, size: int = 3000) -> pd.DataFrame:
    """A list with a 10% control group; the called upgrade with p + EFFECT, the control with p."""
    rng = np.random.default_rng(seed)
    keys = np.array([f"{i}-{i}" for i in range(size)], dtype=object)
    p = rng.uniform(0.05, 0.6, size)
    control = (assign_groups(keys, p, ControlPolicy(0.1, seed)) == CONTROL).astype(int)
    upgraded = (rng.random(size) < p + EFFECT * (1 - control)).astype(int)
    return pd.DataFrame(
        {"model_version": "3", "customer_key": keys, "affluent_probability": p,
         "control": control, "upgraded": upgraded}
    )  # fmt: skip


def test_a_known_effect_is_recovered_inside_the_interval():
    overall = [uplift.uplift_table(campaign(seed)).iloc[0] for seed in range(200)]
    inside = np.mean([r.uplift_low <= EFFECT <= r.uplift_high for r in overall])
    assert 0.85 <= inside <= 0.96
    assert abs(np.mean([r.uplift for r in overall]) - EFFECT) < 0.01


def test_the_effect_by_decile_and_the_qini_curve():
    records = campaign(1, size=20_000)
    table = uplift.uplift_table(records)
    assert table["scope"].tolist() == ["overall"] + [f"decile {d}" for d in range(1, 11)]
    deciles = table.iloc[1:]
    assert deciles["called"].sum() + deciles["control"].sum() == len(records)
    assert (deciles["control"] / (deciles["called"] + deciles["control"])).between(0.09, 0.11).all()
    assert (deciles["uplift_low"] < EFFECT).mean() > 0.7 and (
        deciles["uplift_high"] > EFFECT
    ).mean() > 0.7
    qini = uplift.qini_curve(records)
    assert qini["share_called"].iloc[0] == 0 and qini["share_called"].iloc[-1] == 1
    called = records["control"] == 0
    increment = (
        records.loc[called, "upgraded"].sum()
        - records.loc[~called, "upgraded"].mean() * called.sum()
    )
    assert abs(qini["incremental_upgrades"].iloc[-1] - increment) < 1e-6


def test_without_control_rows_it_says_so():
    records = campaign(2).assign(control=0)
    assert uplift.uplift_table(records).empty and uplift.qini_curve(records).empty
    assert uplift.uplift_markdown(uplift.uplift_table(records)).startswith("no control rows")
