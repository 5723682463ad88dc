"""The quick contract check never says "valid" where pandera would not, and when it does, its
frame is the one pandera returns: one row at a time, every column, every kind of value."""

import numpy as np
import pandas as pd
import pytest

from affluent_assets.lib import quick_check
from affluent_assets.lib.contract import RAW_COLUMNS
from affluent_assets.lib.demo_data import generate_customers
from affluent_assets.lib.schemas import raw_extract_schema
from affluent_assets.lib.validation import ContractViolation, validate_frame

SCHEMA = raw_extract_schema(require_label=False)
BASE = generate_customers(40, seed=5)
VALUES = [None, np.nan, 0, 1, -1, 0.5, 2.0, 7, 99, 122, -0.0, 1e12, -1e12, np.inf, -np.inf,
          "12", " 3 ", "", "abc", "1e3", "nan", "inf", True, "NORMAL", "AFFLUENT", "normal",
          "PMEB", "x\x01y", "tab\tok", "Degree"]  # fmt: skip


def pandera_verdict(frame: pd.DataFrame) -> pd.DataFrame | None:
    try:
        return validate_frame(SCHEMA, frame.copy(), "test")
    except ContractViolation:
        return None


@pytest.mark.parametrize("column", list(RAW_COLUMNS))
def test_one_cell_at_a_time_the_two_agree(column):
    disagreements = []
    for value in VALUES:
        frame = BASE.head(3).astype(object)
        frame.loc[1, column] = value
        quick, slow = quick_check.passes(frame.copy()), pandera_verdict(frame)
        if slow is None:
            if quick is not None:
                disagreements.append((value, "quick accepted what pandera rejects"))
            continue
        if quick is not None:
            pd.testing.assert_frame_equal(quick[slow.columns], slow, check_like=False)
    assert not disagreements


def test_good_rows_take_the_quick_path_with_pandera_s_types():
    frame = BASE.drop(columns=["C_seg"]).astype(object)
    quick, slow = quick_check.passes(frame.copy()), pandera_verdict(frame)
    assert quick is not None and slow is not None
    pd.testing.assert_frame_equal(quick[slow.columns], slow)


def test_a_missing_column_leaves_it_to_pandera():
    assert quick_check.passes(BASE.drop(columns=["C_AGE"])) is None


@pytest.mark.parametrize("rows", [3, 5_000])  # a request's few rows, and a file's chunk
def test_a_label_left_as_pandas_na_is_a_blank_label_at_any_size(rows):
    frame = pd.concat([BASE] * (rows // len(BASE) + 1), ignore_index=True).head(rows)
    frame = frame.astype(object)
    frame.loc[1, "C_seg"] = pd.NA
    assert pandera_verdict(frame) is not None  # a blank label is allowed
    assert quick_check.passes(frame.copy()) is not None
