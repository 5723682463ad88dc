"""The shared compiled kernels: the split over cores, and a row's largest columns in argsort's
own order."""

import numpy as np
import pytest

from affluent_assets.lib.kernels import PARALLEL_ROWS, largest_columns, row_ranges


@pytest.mark.parametrize(("shape", "count"), [((3000, 30), 3), ((500, 2), 3), ((800, 9), 9)])
def test_largest_columns_are_argsorts_first_columns(shape, count):
    rng = np.random.default_rng(count)
    values = rng.normal(size=shape)
    values[rng.random(shape) < 0.2] = 0.0
    values[rng.random(shape) < 0.05] = -0.0  # equal to 0.0: the earlier column first
    values[rng.random(shape) < 0.05] = np.nan  # after every number
    values[:, 1] = values[:, 0]  # ties
    expected = np.argsort(-values, axis=1, kind="stable")[:, :count]
    assert np.array_equal(largest_columns(values, count), expected)


def test_rows_are_split_over_the_cores_without_gaps():
    for rows in (0, 1, PARALLEL_ROWS - 1, PARALLEL_ROWS * 2, 10**6 + 3):
        parts = row_ranges(rows)
        assert parts[0].start == 0 and parts[-1].stop == rows
        assert all(a.stop == b.start for a, b in zip(parts, parts[1:], strict=False))
