"""The demo extract must look like the real one: columns, types, levels, gaps, quirks, hardness."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from xgboost import XGBClassifier

from affluent_assets.lib.contract import (
    AFFLUENT_SHARE,
    AGE_PLACEHOLDER,
    DATA_SHEET,
    GAP_BLOCKS,
    LABEL,
    LEVELS,
    MISSING_RATES,
    NEGATIVE,
    NON_NEGATIVE_COLUMNS,
    POSITIVE,
    RAW_COLUMNS,
    REQUIRED_COLUMNS,
    TEXT_COLUMNS,
)
from affluent_assets.lib.demo_data import generate_customers, main
from affluent_assets.lib.demo_files import write_extract

N_ROWS = 20_000
PANDAS_DTYPES = {"int": "int64", "float": "float64", "text": "object"}


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    return generate_customers(N_ROWS, seed=7)


@pytest.fixture(scope="module")
def affluent(customers: pd.DataFrame) -> pd.Series:
    return customers[LABEL] == POSITIVE


@pytest.mark.parametrize("n_rows", [1, 200, N_ROWS])
def test_columns_order_and_dtypes(n_rows: int) -> None:
    df = generate_customers(n_rows, seed=3)
    assert len(df) == n_rows
    assert list(df.columns) == list(RAW_COLUMNS)
    assert {c: str(t) for c, t in df.dtypes.items()} == {
        c: PANDAS_DTYPES[kind] for c, kind in RAW_COLUMNS.items()
    }
    for column in TEXT_COLUMNS:
        values = df[column].dropna()
        assert values.map(type).eq(str).all(), column


def test_same_seed_same_data_other_seed_other_data() -> None:
    first = generate_customers(2_000, seed=11)
    pd.testing.assert_frame_equal(first, generate_customers(2_000, seed=11))
    other = generate_customers(2_000, seed=12)
    assert not first.equals(other)
    assert (first["MTHCASA"].fillna(-1) != other["MTHCASA"].fillna(-1)).mean() > 0.3


def test_label_has_two_levels_and_the_real_affluent_share(customers: pd.DataFrame) -> None:
    assert set(customers[LABEL]) == {NEGATIVE, POSITIVE}
    assert (customers[LABEL] == POSITIVE).sum() == round(N_ROWS * AFFLUENT_SHARE)


def test_levels_come_from_the_contract(customers: pd.DataFrame) -> None:
    for column, levels in LEVELS.items():
        seen = set(customers[column].dropna())
        assert seen <= set(levels), column
        # Only the levels seen once or twice in the real extract may be absent at this size.
        frequent = {level for level, (count, _) in levels.items() if count > 50}
        assert frequent <= seen, column
    assert set(customers["INCM_TYP"].dropna()) == set(map(float, range(1, 9)))
    assert customers["NUM_PRD"].between(1, 9).all()


def test_level_shares_differ_by_class_as_in_the_contract(
    customers: pd.DataFrame, affluent: pd.Series
) -> None:
    # PMEB: 5,319 of 10,926 AFFLUENT rows vs 29,593 of 55,157 NORMAL rows in the real extract.
    pmeb = customers["gn_occ"] == "PMEB"
    assert pmeb[affluent].mean() == pytest.approx(5319 / 10926, abs=0.02)
    assert pmeb[~affluent].mean() == pytest.approx(29593 / 55157, abs=0.02)
    # NUM_PRD is the strongest single signal: one product for 9% of AFFLUENT, 41% of NORMAL.
    single = customers["NUM_PRD"] == 1
    assert single[affluent].mean() == pytest.approx(976 / 10926, abs=0.01)
    assert single[~affluent].mean() == pytest.approx(22541 / 55157, abs=0.01)


def test_missing_rates_by_class_match_the_contract(
    customers: pd.DataFrame, affluent: pd.Series
) -> None:
    for column, (overall, normal, rich) in MISSING_RATES.items():
        missing = customers[column].isna()
        assert missing.mean() == pytest.approx(overall, abs=0.005), column
        assert missing[~affluent].mean() == pytest.approx(normal, abs=0.005), column
        assert missing[affluent].mean() == pytest.approx(rich, abs=0.005), column
    assert customers[list(REQUIRED_COLUMNS)].notna().all().all()


def test_gap_blocks_share_one_mask(customers: pd.DataFrame) -> None:
    for block, columns in GAP_BLOCKS.items():
        masks = customers[list(columns)].isna()
        assert masks.eq(masks.iloc[:, 0], axis=0).all().all(), block
    casa_gap = customers["MTHCASA"].isna()
    td_gap = customers["MTHTD"].isna()
    assert customers["CASATD_CNT"].isna().equals(casa_gap & td_gap)


def test_about_a_fifth_miss_deposits_loans_funds_and_cards_together(
    customers: pd.DataFrame,
) -> None:
    together = customers[["CASATD_CNT", "HL_tag", "AL_tag", "N_FUNDS", "ANN_N_TRX"]].isna()
    assert together.all(axis=1).mean() == pytest.approx(13471 / 66083, abs=0.03)


def test_loan_flags_are_one_or_blank(customers: pd.DataFrame) -> None:
    for column in ("HL_tag", "AL_tag"):
        assert set(customers[column].dropna()) == {1.0}, column


def test_card_amounts_are_consistent(customers: pd.DataFrame) -> None:
    cards = customers.dropna(subset=["ANN_TRN_AMT"])
    assert len(cards) > 0
    assert (cards["AVG_TRN_AMT"] == cards["ANN_TRN_AMT"] / 12).all()
    assert (cards["MIN_MTH_TRN_AMT"] <= cards["AVG_TRN_AMT"]).all()
    assert (cards["AVG_TRN_AMT"] <= cards["MAX_MTH_TRN_AMT"]).all()
    assert (cards["MAX_MTH_TRN_AMT"] <= cards["ANN_TRN_AMT"]).all()
    assert (cards["ANN_N_TRX"] >= 1).all()


def test_amounts_have_the_contract_shape(customers: pd.DataFrame, affluent: pd.Series) -> None:
    assets = customers["Asset value"]
    assert (assets == 0).mean() == pytest.approx(0.36, abs=0.02)
    assert (assets[affluent] == 0).mean() < (assets[~affluent] == 0).mean()
    assert assets.median() == pytest.approx(1_040, rel=0.1)
    assert (customers["MINCASA"] < 0).any()
    assert customers[list(NON_NEGATIVE_COLUMNS)].min().min() >= 0
    assert customers["CASATD_CNT"].min() >= 1
    assert customers["N_FUNDS"].dropna().between(1, 14).all()
    limits = customers["CC_LMT"].dropna()
    assert (limits == 0).mean() == pytest.approx(0.62, abs=0.02)
    assert customers["MTHTD"].median() == pytest.approx(60_000, rel=0.05)
    assert customers["MTHCASA"].median() == pytest.approx(4_143, rel=0.05)


def test_customer_ids_repeat_and_zero_appears_twice(customers: pd.DataFrame) -> None:
    ids = customers["C_ID"]
    assert ids.between(0, 99_996).all()
    assert ids.nunique() < len(ids)
    assert (ids == 0).sum() == 2


def test_age_quirks(customers: pd.DataFrame, affluent: pd.Series) -> None:
    ages = customers["C_AGE"]
    assert (ages == AGE_PLACEHOLDER).sum() >= 1
    assert (ages == 2).sum() == 1
    assert (ages == 12).sum() == 1
    assert ages.median() == pytest.approx(52, abs=2)
    assert ages[affluent].mean() > ages[~affluent].mean()


def test_label_is_about_as_hard_as_the_real_one(customers: pd.DataFrame) -> None:
    features = customers.drop(columns=[LABEL]).astype({c: "category" for c in TEXT_COLUMNS})
    target = (customers[LABEL] == POSITIVE).astype(int)
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=0.3, stratify=target, random_state=0
    )
    model = XGBClassifier(
        n_estimators=150,
        max_depth=4,
        learning_rate=0.1,
        scale_pos_weight=(y_train == 0).sum() / (y_train == 1).sum(),
        enable_categorical=True,
        tree_method="hist",
        n_jobs=2,
    )
    model.fit(x_train, y_train)
    auc = roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])
    assert 0.83 <= auc <= 0.93


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx"])
def test_write_extract_round_trips(tmp_path, suffix: str) -> None:
    df = generate_customers(300, seed=5)
    path = write_extract(df, tmp_path / "nested" / f"etb{suffix}")
    assert path.exists()
    if suffix == ".csv":
        back = pd.read_csv(path)
    elif suffix == ".parquet":
        back = pd.read_parquet(path)
        # Arrow hands back missing text as None; the extract's readers treat it like NaN.
        back[TEXT_COLUMNS] = back[TEXT_COLUMNS].fillna(float("nan"))
    else:
        back = pd.read_excel(path, sheet_name=DATA_SHEET, engine="calamine")
    pd.testing.assert_frame_equal(back, df, check_dtype=False, rtol=1e-9)
    assert back["C_ID"].dtype == "int64"


def test_workbook_has_the_bank_layout(tmp_path) -> None:
    path = write_extract(generate_customers(50, seed=5), tmp_path / "etb.xlsx")
    sheets = pd.read_excel(path, sheet_name=None, engine="calamine", header=None)
    names = list(sheets)
    assert len(names) == 3
    assert names[1] == DATA_SHEET
    problem, dictionary = sheets[names[0]], sheets[names[2]]
    assert problem.iloc[:, 0].str.contains("affluent", case=False).any()
    assert list(dictionary.iloc[0]) == ["Feature", "Definition", "Remarks"]
    features = list(dictionary.iloc[1:, 0])
    assert "Asset_value" in features
    assert "Asset value" not in features


def test_write_extract_rejects_unknown_suffix(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown extract format"):
        write_extract(generate_customers(10), tmp_path / "etb.json")


def test_cli_writes_the_file(tmp_path, capsys) -> None:
    out = tmp_path / "raw" / "etb.csv"
    main(["--rows", "120", "--seed", "3", "--out", str(out)])
    assert len(pd.read_csv(out)) == 120
    assert str(out) in capsys.readouterr().out
