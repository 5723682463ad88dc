"""The compiled number texts are Python's own, whatever the number."""

import numpy as np

from affluent_assets.lib.features import SMALL_ROWS
from affluent_assets.lib.number_texts import LIMIT, number_texts
from affluent_assets.lib.reasons import _number_text, _texts


def python_texts(values: np.ndarray) -> list[str]:
    return [_number_text(value) for value in values.tolist()]


def test_equal_to_python_formatting_of_each_number():
    rng = np.random.default_rng(7)
    values = np.concatenate(
        [
            rng.lognormal(8, 3, 50_000).round(2),  # balances, to the cent
            -rng.lognormal(5, 3, 10_000),  # any float, negative
            np.floor(rng.lognormal(10, 4, 10_000)),  # whole numbers
            rng.uniform(-1, 1, 10_000),  # below one, negative ones round to -0.00
            np.arange(0, 20_000) * 0.005,  # every half cent: rounded as Python rounds them
            rng.uniform(0, LIMIT, 10_000),
            [0.0, -0.0, np.nan, np.inf, -np.inf, 999.995, 0.005, -0.005, 0.015, 1e300],
            [LIMIT - 0.01, LIMIT - 1, LIMIT, LIMIT + 0.5, -(LIMIT - 0.01), 2.0**53 + 2, -1e-300],
        ]
    )
    assert number_texts(values, _number_text) == python_texts(values)


def test_many_rows_of_a_column_read_as_few_rows_do():
    rng = np.random.default_rng(8)
    column = np.round(rng.lognormal(9, 2, SMALL_ROWS * 3), 2)
    column[::11] = np.nan
    rows = np.arange(len(column))
    assert _texts(column, rows) == python_texts(column)  # the kernel's path
    assert _texts(column, rows[:10]) == python_texts(column[:10])  # a request's path
