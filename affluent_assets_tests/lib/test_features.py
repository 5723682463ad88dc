"""clean_customers and build_features: snake_case names, unique keys, and features computed from
each row alone (nothing fitted), so training and scoring see the same columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from affluent_assets.lib.contract import GAP_BLOCKS, LABEL, RAW_COLUMNS
from affluent_assets.lib.features import (
    CLEAN_COLUMN_NAMES,
    FEATURE_TABLE_COLUMNS,
    FLAG_FEATURES,
    build_features,
    clean_customers,
    label_vector,
    snake_case,
)

SOURCE = "etb_demo.xlsx"


@pytest.fixture
def clean(demo_raw) -> pd.DataFrame:
    return clean_customers(demo_raw, SOURCE)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Asset value", "asset_value"),
        ("DRvCR", "drvcr"),
        ("C_ID", "c_id"),
        ("MAX_MTH_TRN_AMT", "max_mth_trn_amt"),
        (" Asset  value ", "asset_value"),
    ],
)
def test_snake_case(raw, expected):
    assert snake_case(raw) == expected


def test_clean_customers_columns(clean):
    assert list(clean.columns[:3]) == ["customer_key", "source_file", "source_row"]
    assert list(clean.columns[3:]) == [CLEAN_COLUMN_NAMES[c] for c in RAW_COLUMNS]
    assert "asset_value" in clean.columns and "Asset value" not in clean.columns
    assert all(name == name.lower() and " " not in name for name in clean.columns)
    assert (clean["source_file"] == SOURCE).all()
    for column in ("c_id", "c_age", "num_prd"):
        assert clean[column].dtype == "int64"


def test_clean_customers_keeps_the_values(demo_raw, clean):
    np.testing.assert_array_equal(clean["asset_value"], demo_raw["Asset value"])
    np.testing.assert_array_equal(clean["c_id"], demo_raw["C_ID"])
    assert clean["c_seg"].tolist() == demo_raw[LABEL].tolist()


def test_customer_key_unique_although_c_id_repeats(demo_raw, clean):
    assert demo_raw["C_ID"].duplicated().any()  # the quirk the key must survive
    assert clean["customer_key"].is_unique
    assert clean.loc[0, "customer_key"] == f"{demo_raw.loc[0, 'C_ID']}-1"


def test_customer_key_unique_with_every_c_id_equal(demo_raw):
    clean = clean_customers(demo_raw.head(5).assign(C_ID=0), SOURCE)
    assert clean["customer_key"].tolist() == ["0-1", "0-2", "0-3", "0-4", "0-5"]


def test_source_row_is_one_based_data_row(demo_raw):
    subset = demo_raw.iloc[[10, 3, 7]]  # a non-default index must not leak into the row numbers
    clean = clean_customers(subset, SOURCE)
    assert clean["source_row"].tolist() == [1, 2, 3]
    assert clean["source_row"].dtype == "int64"
    assert clean.index.tolist() == [0, 1, 2]
    assert clean["c_id"].tolist() == subset["C_ID"].tolist()


def test_text_tidied_and_blanks_stay_blank(demo_raw):
    raw = demo_raw.head(4).copy()
    raw["gn_occ"] = ["  PMEB ", np.nan, "RETIREE", None]
    raw[LABEL] = [" normal", "AFFLUENT ", "NORMAL", "affluent"]
    clean = clean_customers(raw, SOURCE)
    assert clean["gn_occ"].tolist() == ["PMEB", None, "RETIREE", None]
    assert clean["c_seg"].tolist() == ["NORMAL", "AFFLUENT", "NORMAL", "AFFLUENT"]


def test_c_seg_none_when_label_absent(demo_raw):
    clean = clean_customers(demo_raw.drop(columns=LABEL), SOURCE)
    assert "c_seg" in clean.columns
    assert clean["c_seg"].isna().all()
    assert label_vector(clean).sum() == 0


def test_label_vector(clean):
    expected = (clean["c_seg"] == "AFFLUENT").astype("int64")
    pd.testing.assert_series_equal(label_vector(clean), expected)
    assert set(label_vector(clean)) == {0, 1}


# --- build_features ---------------------------------------------------------------------------


def test_feature_columns(clean):
    features = build_features(clean)
    assert list(features.columns) == FEATURE_TABLE_COLUMNS
    assert features["customer_key"].tolist() == clean["customer_key"].tolist()
    for flag in FLAG_FEATURES:
        assert set(features[flag].unique()) <= {0.0, 1.0}, flag


def test_features_are_row_wise(clean):
    full = build_features(clean)
    subset_rows = [5, 17, 123, 999, 1500]
    subset = build_features(clean.iloc[subset_rows])
    pd.testing.assert_frame_equal(subset, full.iloc[subset_rows])

    # Changing every other row does not change these rows' features either.
    others = clean.copy()
    rest = ~others.index.isin(subset_rows)
    for column in ("mthcasa", "mthtd", "asset_value", "ut_ave", "incm_typ", "drvcr"):
        others.loc[rest, column] = others.loc[rest, column].fillna(0) * 1000 + 7
    others.loc[rest, "c_age"] = 122
    others.loc[rest, "gn_occ"] = "STUDENT"
    changed = build_features(others)
    pd.testing.assert_frame_equal(changed.iloc[subset_rows], full.iloc[subset_rows])
    assert not changed.loc[rest, "asset_value"].equals(full.loc[rest, "asset_value"])


def _one_row(clean: pd.DataFrame, **values) -> pd.DataFrame:
    row = clean.head(1).copy()
    for column, value in values.items():
        row[column] = value
    return build_features(row)


@pytest.mark.parametrize(
    ("age", "expected", "unknown"),
    [
        (122, np.nan, 1.0),
        (2, np.nan, 1.0),
        (12, np.nan, 1.0),
        (17, np.nan, 1.0),
        (101, np.nan, 1.0),
        (18, 18.0, 0.0),
        (52, 52.0, 0.0),
        (100, 100.0, 0.0),
    ],
)
def test_age_placeholder_and_implausible_ages(clean, age, expected, unknown):
    features = _one_row(clean, c_age=age)
    assert features.loc[0, "age_unknown"] == unknown
    if np.isnan(expected):
        assert np.isnan(features.loc[0, "age"])
    else:
        assert features.loc[0, "age"] == expected


def test_age_122_in_the_demo_data(clean):
    features = build_features(clean)
    placeholder = clean["c_age"] == 122
    assert placeholder.sum() >= 1
    assert features.loc[placeholder, "age"].isna().all()
    assert (features.loc[placeholder, "age_unknown"] == 1.0).all()


def test_loan_flags_blank_becomes_zero(clean):
    features = build_features(clean)
    for column in ("hl_tag", "al_tag"):
        assert clean[column].isna().any() and clean[column].notna().any()
        expected = np.where(clean[column].isna(), 0.0, 1.0)
        np.testing.assert_array_equal(features[column].to_numpy(), expected)
        assert features[column].notna().all()


def test_gap_flags_match_the_masks(clean):
    features = build_features(clean)
    masks = {
        "has_casa": clean["mthcasa"].notna(),
        "has_time_deposit": clean["mthtd"].notna(),
        "has_unit_trust": clean["ut_ave"].notna(),
        "has_card_spend": clean["ann_trn_amt"].notna(),
        "has_income_band": clean["incm_typ"].notna(),
        "has_drvcr": clean["drvcr"].notna(),
    }
    for flag, mask in masks.items():
        assert 0 < mask.sum() < len(mask), flag  # both cases occur
        np.testing.assert_array_equal(features[flag].to_numpy(), mask.to_numpy(dtype="float64"))
    # The flags stand for whole gap blocks of the contract.
    for block, flag in (("casa", "has_casa"), ("td", "has_time_deposit")):
        for column in GAP_BLOCKS[block]:
            present = clean[snake_case(column)].notna().to_numpy(dtype="float64")
            np.testing.assert_array_equal(features[flag].to_numpy(), present)


def test_numbers_pass_through_with_blanks_kept(clean):
    features = build_features(clean)
    for column in ("mthcasa", "casatd_cnt", "asset_value", "n_funds", "cc_lmt", "incm_typ"):
        assert features[column].dtype == "float64"
        pd.testing.assert_series_equal(
            features[column], clean[column].astype("float64"), check_names=False
        )


def test_total_deposits(clean):
    features = build_features(clean)
    expected = clean["mthcasa"].fillna(0) + clean["mthtd"].fillna(0)
    np.testing.assert_allclose(features["total_deposits"], expected)
    both_blank = clean["mthcasa"].isna() & clean["mthtd"].isna()
    assert (features.loc[both_blank, "total_deposits"] == 0).all()


def test_categories_blank_as_none(clean):
    features = build_features(clean)
    for column in ("c_edu", "c_hse", "gn_occ"):
        blank = clean[column].isna()
        assert blank.any()
        assert features.loc[blank, column].map(lambda v: v is None).all()
        assert features.loc[~blank, column].tolist() == clean.loc[~blank, column].tolist()


def test_build_features_without_label(demo_raw):
    features = build_features(clean_customers(demo_raw.drop(columns=LABEL), SOURCE))
    assert list(features.columns) == FEATURE_TABLE_COLUMNS
    assert len(features) == len(demo_raw)
