"""The control draw: reproducible from its seed, each customer at most once, the share held
back in every score decile of the list."""

import numpy as np
import pytest

from affluent_assets.lib.control_group import (
    CONTROL,
    ControlPolicy,
    assign_groups,
    decile_strata,
)

KEYS = np.array([f"{i}-{i + 1}" for i in range(2_003)], dtype=object)
SCORES = np.random.default_rng(5).uniform(0, 1, len(KEYS))


def test_the_same_seed_draws_the_same_customers_whatever_the_order():
    first = assign_groups(KEYS, SCORES, ControlPolicy(0.1, seed=9))
    order = np.random.default_rng(6).permutation(len(KEYS))
    again = assign_groups(KEYS[order], SCORES[order], ControlPolicy(0.1, seed=9))
    assert set(KEYS[first == CONTROL]) == set(KEYS[order][again == CONTROL])
    other = assign_groups(KEYS, SCORES, ControlPolicy(0.1, seed=10))
    assert set(KEYS[first == CONTROL]) != set(KEYS[other == CONTROL])


def test_each_score_decile_holds_back_its_share_and_no_one_twice():
    groups = assign_groups(KEYS, SCORES, ControlPolicy(0.1, seed=9))
    control = KEYS[groups == CONTROL]
    assert len(control) == round(0.1 * len(KEYS)) and len(set(control)) == len(control)
    strata = decile_strata(SCORES)
    for decile in range(1, 11):
        members = strata == decile
        assert abs((groups[members] == CONTROL).sum() - 0.1 * members.sum()) <= 1


def test_a_list_that_repeats_a_customer_is_refused():
    with pytest.raises(ValueError, match="repeats a key"):
        assign_groups(np.array(["1-1", "1-1"], dtype=object), [0.5, 0.4], ControlPolicy())


def test_no_share_holds_no_one_back_and_a_bad_share_is_refused():
    assert (assign_groups(KEYS, SCORES, ControlPolicy(0.0)) != CONTROL).all()
    with pytest.raises(ValueError, match="control share"):
        ControlPolicy(1.0)
