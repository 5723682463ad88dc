"""A chunk's text factorized once (lib/levels.py): the same answer as pandas, remembered only
while the column's memory lives, and carried by the columns made from codes."""

import gc

import numpy as np
import pandas as pd
import pytest

from affluent_assets.lib import levels
from affluent_assets.lib.data_quality import QualityFindings, _row_hashes
from affluent_assets.lib.features import SMALL_ROWS, _levels, _tidy_text
from affluent_assets.lib.levels import factorized

ROWS = SMALL_ROWS * 3  # above the small-request paths


def _text(rows: int = ROWS, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    choices = np.array(["A", " A", "b ", None, np.nan, "c"], dtype=object)
    return choices[rng.integers(0, len(choices), rows)]


def test_factorized_is_pandas_factorize():
    values = _text()
    codes, found = factorized(values)
    expected_codes, expected_levels = pd.factorize(values)
    np.testing.assert_array_equal(codes, expected_codes)
    np.testing.assert_array_equal(found, expected_levels)
    assert (codes[pd.isna(values)] == -1).all()


def test_a_column_of_a_frame_is_factorized_once(monkeypatch):
    frame = pd.DataFrame({"a": _text(), "b": _text(seed=1)})
    first = factorized(frame["a"])
    calls = []
    monkeypatch.setattr(levels.pd, "factorize", lambda *a, **k: calls.append(a) or None)
    # Another Series, another view of the same block: the same memory, answered from memory.
    again = factorized(frame.copy(deep=False)["a"].to_numpy())
    assert again[0] is first[0] and not calls


def test_an_answer_dies_with_its_memory():
    values = _text()
    factorized(values)
    assert any(entry[0]() is values for entry in levels._KNOWN.values())
    del values
    gc.collect()
    # Another array may get the same address: it must be factorized afresh, not answered
    # with the old codes.
    fresh = np.array(["z"] * ROWS, dtype=object)
    codes, found = factorized(fresh)
    assert found.tolist() == ["z"] and (codes == 0).all()


def test_tidied_and_feature_columns_carry_their_codes_and_cannot_change():
    raw = _text()
    tidy = _tidy_text(raw)
    assert tidy.tolist() == [None if pd.isna(v) else v.strip() for v in raw.tolist()]
    codes, found = factorized(tidy)
    np.testing.assert_array_equal(codes, pd.factorize(tidy)[0])  # " A" and "A" are one level
    assert sorted(found.tolist()) == ["A", "b", "c"]
    feature = _levels(tidy)
    assert feature is not tidy and feature.tolist() == tidy.tolist()
    for remembered in (tidy, feature):
        with pytest.raises(ValueError, match="read-only"):
            remembered[0] = "changed"


def test_rows_hash_equal_exactly_when_their_values_are_equal():
    frame = pd.DataFrame(
        {
            "C_ID": np.array([1, 2, 1, 1, 1], dtype="int64"),
            "MTHCASA": np.array([1.5, np.nan, 1.5, 1.5, 1.5]),
            "C_EDU": np.array(["A", None, "A", "B", None], dtype=object),
        }
    )
    hashes = _row_hashes(frame)
    assert hashes[0] == hashes[2]
    assert len(set(hashes.tolist())) == 4  # a level or a blank apart is another row


def test_repeats_are_found_across_chunks_of_many_rows():
    rows = _text(ROWS)
    frame = pd.DataFrame({"C_ID": np.arange(ROWS) % 7, "C_EDU": rows})
    findings = QualityFindings()
    for start in range(0, ROWS, ROWS // 3):
        chunk = QualityFindings()
        chunk.add_rows(frame.iloc[start : start + ROWS // 3])
        findings.merge(chunk)
    keyed = frame.assign(C_EDU=frame["C_EDU"].where(frame["C_EDU"].notna(), None))
    expected = keyed.duplicated(keep="first").to_numpy()
    assert findings.counts["duplicate_rows"] == expected.sum() > 0
    np.testing.assert_array_equal(findings.repeated_rows(), np.flatnonzero(expected))


def test_a_column_with_more_distinct_levels_than_a_request_has_rows_is_tidied():
    """Its levels are tidied in one go, whatever their number (they were once tidied by the
    same many-rows path, which called itself for ever)."""
    values = np.array([f" level {i} " for i in range(SMALL_ROWS + 500)] * 2, dtype=object)
    tidy = _tidy_text(values, upper=True)
    assert tidy.tolist() == [v.strip().upper() for v in values.tolist()]
    assert len(factorized(tidy)[1]) == SMALL_ROWS + 500
