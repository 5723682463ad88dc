"""The pandera schemas: the raw contract rejects every kind of bad file with a message naming the
file, the column and the 1-based data rows; quality findings warn without rejecting; the
downstream schemas accept the real outputs and reject broken ones."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from affluent_assets.lib.contract import DOCUMENTED_RANGES, GAP_BLOCKS, LABEL, RAW_COLUMNS
from affluent_assets.lib.data_quality import quality_findings, quality_warnings
from affluent_assets.lib.demo_files import write_extract
from affluent_assets.lib.extract_io import read_extract
from affluent_assets.lib.features import FEATURE_TABLE_COLUMNS, build_features, clean_customers
from affluent_assets.lib.schemas import (
    clean_customers_schema,
    contract_frame,
    customer_features_schema,
    raw_extract_schema,
    scored_customers_schema,
)
from affluent_assets.lib.validation import (
    MAX_ROWS_NAMED,
    ContractViolation,
    shown_value,
    validate_frame,
)

SOURCE = "etb_extract.xlsx"


def _violation(frame: pd.DataFrame, schema=None, **kwargs) -> ContractViolation:
    schema = schema if schema is not None else raw_extract_schema()
    with pytest.raises(ContractViolation) as caught:
        validate_frame(schema, frame, SOURCE, **kwargs)
    message = str(caught.value)
    assert message.startswith(f"{SOURCE}: "), message
    return caught.value


def _rows_named(message: str, column: str) -> list[int]:
    """Data rows the message quotes for `column` (`column 'X': ... data rows 3 (..), 7 (..)`)."""
    part = re.search(rf"column '{re.escape(column)}': [^;]*", message)
    assert part, f"column {column!r} not named in {message!r}"
    listed = part.group(0).split("data rows", 1)
    assert len(listed) == 2, f"no rows named for {column!r} in {message!r}"
    return [int(n) for n in re.findall(r"(?:^|, )(\d+) \(", listed[1].strip())]


def _as_float(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    frame[column] = frame[column].astype("float64")
    return frame


# --- the raw contract: good files -------------------------------------------------------------


def test_good_demo_frame_passes(demo_raw):
    valid = validate_frame(raw_extract_schema(), demo_raw, SOURCE)
    assert len(valid) == len(demo_raw)
    assert list(valid.columns) == list(demo_raw.columns)
    pd.testing.assert_series_equal(valid["C_seg"], demo_raw["C_seg"])
    # Integer columns are read as float by validation so a blank is reported, not a crash.
    assert (valid["C_AGE"].to_numpy() == demo_raw["C_AGE"].to_numpy()).all()


def test_good_demo_frame_without_label_passes_when_label_not_required(demo_raw):
    rescoring = demo_raw.drop(columns=LABEL)
    valid = validate_frame(raw_extract_schema(require_label=False), rescoring, SOURCE)
    assert len(valid) == len(demo_raw)
    assert LABEL not in valid.columns
    # ...and a labelled file is still checked for its labels.
    bad = demo_raw.copy()
    bad.loc[0, LABEL] = "VIP"
    assert _rows_named(str(_violation(bad, raw_extract_schema(require_label=False))), LABEL) == [1]


def test_label_required_by_default(demo_raw):
    violation = _violation(demo_raw.drop(columns=LABEL))
    assert "missing column 'C_seg'" in str(violation)


def test_good_file_read_from_disk_passes(demo_raw, tmp_path):
    for suffix in (".csv", ".xlsx", ".parquet"):
        frame = read_extract(write_extract(demo_raw.head(200), tmp_path / f"x{suffix}"))
        assert len(validate_frame(raw_extract_schema(), frame, suffix)) == 200


def test_negative_min_casa_is_allowed(demo_raw):
    frame = demo_raw.copy()
    frame.loc[0, "MINCASA"] = -209_405.0  # the contract: can be negative
    validate_frame(raw_extract_schema(), frame, SOURCE)


def test_extra_columns_are_not_a_violation(demo_raw):
    validate_frame(raw_extract_schema(), demo_raw.assign(NEW_FIELD=1), SOURCE)


# --- the raw contract: violations -------------------------------------------------------------


def test_missing_column_named(demo_raw):
    message = str(_violation(demo_raw.drop(columns="NUM_PRD")))
    assert "missing column 'NUM_PRD'" in message


def test_renamed_column_named(demo_raw):
    message = str(_violation(demo_raw.rename(columns={"Asset value": "Asset_value"})))
    assert "missing column 'Asset value'" in message


def test_text_in_numeric_column_names_column_and_rows(demo_raw):
    frame = demo_raw.copy()
    frame["MTHCASA"] = frame["MTHCASA"].astype(object)
    frame.loc[[2, 6], "MTHCASA"] = "abc"  # data rows 3 and 7
    violation = _violation(frame)
    message = str(violation)
    assert "MTHCASA" in message
    assert _rows_named(message, "MTHCASA") == [3, 7]
    assert "'abc'" in message
    assert set(violation.failures["column"]) == {"MTHCASA"}


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_text_in_numeric_column_from_a_file(demo_raw, tmp_path, suffix):
    frame = demo_raw.head(50).copy()
    frame["MTHCASA"] = frame["MTHCASA"].astype(object)
    frame.loc[[2, 6], "MTHCASA"] = "abc"
    path = write_extract(frame, tmp_path / f"bad{suffix}")
    with pytest.raises(ContractViolation) as caught:
        validate_frame(raw_extract_schema(), read_extract(path), path.name)
    message = str(caught.value)
    assert message.startswith(f"bad{suffix}: ")
    assert _rows_named(message, "MTHCASA") == [3, 7]


def test_text_in_integer_column(demo_raw):
    frame = demo_raw.copy()
    frame["C_AGE"] = frame["C_AGE"].astype(object)
    frame.loc[4, "C_AGE"] = "forty"
    assert _rows_named(str(_violation(frame)), "C_AGE") == [5]


@pytest.mark.parametrize("label", ["RICH", "normal", "AFFLUENT ", np.nan])
def test_label_other_than_the_two(demo_raw, label):
    frame = demo_raw.copy()
    frame.loc[[4, 9], LABEL] = label
    assert _rows_named(str(_violation(frame)), LABEL) == [5, 10]


@pytest.mark.parametrize("column", ["NUM_PRD", "CASATD_CNT", "C_ID", "N_FUNDS", "Asset value"])
def test_negative_count_or_amount(demo_raw, column):
    frame = demo_raw.copy()
    if column != "NUM_PRD" and column != "C_ID":
        frame = _as_float(frame, column)
    frame.loc[0, column] = -1
    frame.loc[11, column] = -3
    message = str(_violation(frame))
    assert "negative" in message
    assert _rows_named(message, column) == [1, 12]


@pytest.mark.parametrize("column", ["C_AGE", "C_ID", "NUM_PRD", "Asset value"])
def test_blank_in_required_column(demo_raw, column):
    frame = _as_float(demo_raw.copy(), column)
    frame.loc[7, column] = np.nan
    message = str(_violation(frame))
    assert "blank" in message
    assert _rows_named(message, column) == [8]


@pytest.mark.parametrize("column", ["HL_tag", "AL_tag"])
def test_loan_flag_zero(demo_raw, column):
    frame = demo_raw.copy()
    frame.loc[[0, 1], column] = 0.0
    message = str(_violation(frame))
    assert "must be 1 or blank" in message
    assert _rows_named(message, column) == [1, 2]


def test_non_whole_age(demo_raw):
    frame = _as_float(demo_raw.copy(), "C_AGE")
    frame.loc[3, "C_AGE"] = 33.5
    message = str(_violation(frame))
    assert "whole number" in message
    assert _rows_named(message, "C_AGE") == [4]


def test_every_violation_reported_at_once(demo_raw):
    frame = demo_raw.drop(columns="PC")
    frame.loc[0, "NUM_PRD"] = -2
    frame.loc[1, LABEL] = "UNKNOWN"
    message = str(_violation(frame))
    assert "missing column 'PC'" in message
    assert _rows_named(message, "NUM_PRD") == [1]
    assert _rows_named(message, LABEL) == [2]


def test_many_failing_rows_are_counted_not_all_listed(demo_raw):
    frame = demo_raw.copy()
    frame.loc[: MAX_ROWS_NAMED + 4, "NUM_PRD"] = -1  # 15 rows
    message = str(_violation(frame))
    assert _rows_named(message, "NUM_PRD") == list(range(1, MAX_ROWS_NAMED + 1))
    assert "on 15 row(s)" in message
    assert "and 5 more" in message


# --- quality findings -------------------------------------------------------------------------


def test_quality_findings_count_without_rejecting(demo_raw):
    frame = demo_raw.copy()
    frame["C_AGE"] = 40
    frame.loc[[0, 1, 2], "C_AGE"] = 122  # placeholder
    frame.loc[3, "C_AGE"] = 2
    frame.loc[4, "C_AGE"] = 12
    frame.loc[5, "C_AGE"] = 130
    frame.loc[[6, 7], "gn_occ"] = "ASTRONAUT"
    frame.loc[8, "C_HSE"] = "CASTLE"
    frame.loc[9, "C_EDU"] = "Kindergarten"
    frame.loc[10, "INCM_TYP"] = 9.0
    frame.loc[11, "NUM_PRD"] = 12
    frame.loc[12, "N_FUNDS"] = 40.0
    frame["EXTRA"] = "x"

    valid = validate_frame(raw_extract_schema(), frame, SOURCE)  # warnings, not rejections
    findings = quality_findings(valid)

    # Of the documented ranges, gap blocks and card-amount rule (issue 19), only the unit-trust
    # gap: row 13's N_FUNDS was set where UT_AVE and MAXUT are blank.
    documented = ("out_of_range_", "gap_block_", "avg_trn_amt_")
    found = {k: n for k, n in findings.counts.items() if k.startswith(documented) and n}
    assert found == {"gap_block_unit_trust": 1}
    assert {k: n for k, n in findings.counts.items() if not k.startswith(documented)} == {
        "unknown_level_C_EDU": 1,
        "unknown_level_C_HSE": 1,
        "unknown_level_gn_occ": 2,
        "age_placeholder_122": 3,
        "age_under_18": 2,
        "age_out_of_range": 1,
        "income_band_unknown": 1,
        "num_prd_out_of_range": 1,
        "n_funds_out_of_range": 1,
        "extra_columns": 1,
        "duplicate_rows": 0,
    }
    assert findings.total == 15
    assert findings.examples["unknown_level_gn_occ"] == ["ASTRONAUT"]
    assert findings.examples["extra_columns"] == ["EXTRA"]
    assert set(findings.examples["age_under_18"]) == {"2.0", "12.0"}
    assert set(findings.examples["age_out_of_range"]) == {"130.0"}


def test_quality_findings_clean_frame_has_none(demo_raw):
    frame = demo_raw.copy()
    frame["C_AGE"] = frame["C_AGE"].clip(18, 100)
    findings = quality_findings(validate_frame(raw_extract_schema(), frame, SOURCE))
    assert findings.total == 0


def test_contract_frame_restores_integers_and_order(demo_raw):
    shuffled = demo_raw[list(reversed(demo_raw.columns))].assign(EXTRA=1)
    valid = validate_frame(raw_extract_schema(), shuffled, SOURCE)
    assert valid["C_ID"].dtype == "float64"  # what validation hands back

    frame = contract_frame(valid)

    assert list(frame.columns) == list(RAW_COLUMNS)
    for column, kind in RAW_COLUMNS.items():
        if kind == "int":
            assert frame[column].dtype == "int64", column
            assert frame[column].tolist() == demo_raw[column].tolist()
    assert frame["PC"].dtype == "float64"
    assert LABEL not in contract_frame(valid.drop(columns=LABEL)).columns


# --- downstream schemas -----------------------------------------------------------------------


@pytest.fixture
def clean(demo_raw) -> pd.DataFrame:
    raw = contract_frame(validate_frame(raw_extract_schema(), demo_raw, SOURCE))
    return clean_customers(raw, SOURCE)


def test_clean_features_and_scores_schemas_accept_real_outputs(clean):
    validate_frame(clean_customers_schema(), clean, SOURCE)
    features = build_features(clean)
    validated = validate_frame(customer_features_schema(), features, SOURCE)
    assert list(validated.columns) == FEATURE_TABLE_COLUMNS
    scored = pd.DataFrame(
        {
            "customer_key": features["customer_key"],
            "affluent_probability": np.linspace(0, 1, len(features)),
            "score_decile": np.arange(len(features)) % 10 + 1,
            "predicted_segment": np.where(np.arange(len(features)) % 3, "NORMAL", "AFFLUENT"),
        }
    )
    validate_frame(scored_customers_schema(), scored, SOURCE)


def test_clean_schema_without_label(demo_raw):
    clean = clean_customers(demo_raw.drop(columns=LABEL), SOURCE)
    validate_frame(clean_customers_schema(require_label=False), clean, SOURCE)
    _violation(clean, clean_customers_schema(require_label=True))


def test_clean_schema_rejects_duplicated_key(clean):
    broken = clean.copy()
    broken.loc[5, "customer_key"] = broken.loc[2, "customer_key"]
    message = str(_violation(broken, clean_customers_schema()))
    assert "customer_key" in message
    assert "duplicated" in message


def test_clean_schema_rejects_row_zero_and_unknown_column(clean):
    broken = clean.copy()
    broken.loc[0, "source_row"] = 0
    assert _rows_named(str(_violation(broken, clean_customers_schema())), "source_row") == [1]
    _violation(clean.assign(extra=1), clean_customers_schema())  # strict


def test_features_schema_rejects_bad_flag_and_duplicate_key(clean):
    features = build_features(clean)
    broken = features.copy()
    broken.loc[3, "has_casa"] = 2.0
    assert _rows_named(str(_violation(broken, customer_features_schema())), "has_casa") == [4]
    broken = features.copy()
    broken.loc[1, "customer_key"] = broken.loc[0, "customer_key"]
    assert "customer_key" in str(_violation(broken, customer_features_schema()))
    broken = features.copy()
    broken.loc[0, "age_unknown"] = np.nan
    assert _rows_named(str(_violation(broken, customer_features_schema())), "age_unknown") == [1]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("affluent_probability", 1.5),
        ("affluent_probability", -0.1),
        ("score_decile", 11),
        ("score_decile", 0),
        ("predicted_segment", "MAYBE"),
    ],
)
def test_scores_schema_rejects_out_of_range(column, value):
    scored = pd.DataFrame(
        {
            "customer_key": ["a-1", "b-2", "c-3"],
            "affluent_probability": [0.1, 0.5, 0.9],
            "score_decile": [10, 5, 1],
            "predicted_segment": ["NORMAL", "NORMAL", "AFFLUENT"],
        }
    )
    validate_frame(scored_customers_schema(), scored, SOURCE)
    scored.loc[1, column] = value
    assert _rows_named(str(_violation(scored, scored_customers_schema())), column) == [2]


def test_scores_schema_rejects_duplicated_key():
    scored = pd.DataFrame(
        {
            "customer_key": ["a-1", "a-1"],
            "affluent_probability": [0.1, 0.5],
            "score_decile": [10, 5],
            "predicted_segment": ["NORMAL", "NORMAL"],
        }
    )
    assert "customer_key" in str(_violation(scored, scored_customers_schema()))


def test_infinite_amount_is_rejected_with_its_rows(demo_raw, tmp_path):
    frame = demo_raw.head(20).copy()
    frame.loc[[2, 5], "MTHCASA"] = [np.inf, -np.inf]
    path = write_extract(frame, tmp_path / "inf.csv")
    message = str(_violation(read_extract(path)))
    assert "'MTHCASA'" in message and "finite" in message and "data rows 3" in message


def test_landing_file_may_carry_a_blank_label_column(demo_raw):
    frame = demo_raw.head(30).assign(C_seg=np.nan)
    valid = validate_frame(raw_extract_schema(require_label=False), frame, SOURCE)
    clean = clean_customers(contract_frame(valid), SOURCE)
    assert clean["c_seg"].isna().all()
    _violation(frame)  # the training extract still needs its labels


def test_every_missing_column_is_named(demo_raw):
    frame = demo_raw.drop(columns=["PC", "Asset value", "CC_LMT"]).head(5)
    message = str(_violation(frame))
    assert "missing columns 'PC', 'Asset value', 'CC_LMT'" in message


# --- control characters -----------------------------------------------------------------------


@pytest.mark.parametrize("character", ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x7f"])
@pytest.mark.parametrize("column", ["C_EDU", "C_HSE", "gn_occ", LABEL])
def test_control_character_in_a_text_column_named_with_column_rows_and_value(
    demo_raw, column, character
):
    frame = demo_raw.copy()
    frame.loc[[4, 1], column] = f"PM{character}EB"  # data rows 2 and 5
    message = str(_violation(frame))
    expected = f"column {column!r}: holds a control character (no_control_characters) on 2 row(s)"
    assert expected in message, message
    shown = repr(f"PM{character}EB")  # escaped: no raw control character in the message
    assert f"data rows 2 ({shown}), 5 ({shown})" in message, message
    assert not any(ord(c) < 32 or ord(c) == 127 for c in message)


def test_tab_cr_and_lf_in_text_are_allowed(demo_raw):
    frame = demo_raw.copy()
    frame.loc[0, "C_HSE"] = "HDB\t4-5 ROOM"
    frame.loc[1, "C_EDU"] = "Degree\r\n(hons)"
    frame.loc[2, "gn_occ"] = "WHITE\nCOLLAR"
    validate_frame(raw_extract_schema(), frame, SOURCE)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx"])
def test_control_characters_from_a_file_are_rejected(demo_raw, tmp_path, suffix):
    frame = demo_raw.head(40).copy()
    frame.loc[2, "gn_occ"] = "PM_x0000_EB" if suffix == ".xlsx" else "PM\x00EB"  # Excel's escape
    frame.loc[30, "gn_occ"] = "A_x0001_B" if suffix == ".xlsx" else "A\x01B"
    path = write_extract(frame, tmp_path / f"control{suffix}")
    with pytest.raises(ContractViolation) as caught:
        validate_frame(raw_extract_schema(), read_extract(path), path.name)
    message = str(caught.value)
    assert message == (
        f"control{suffix}: breaks the data contract — column 'gn_occ': holds a control "
        "character (no_control_characters) on 2 row(s): data rows 3 ('PM\\x00EB'), 31 ('A\\x01B')"
    )


def test_many_control_characters_are_counted_in_ascending_rows(demo_raw):
    frame = demo_raw.copy()
    rows = [1500, 7, 900, *range(20, 32)]  # 15 rows, not in order
    frame.loc[rows, "gn_occ"] = "X\x02"
    message = str(_violation(frame))
    assert _rows_named(message, "gn_occ") == sorted(r + 1 for r in rows)[:MAX_ROWS_NAMED]
    assert "on 15 row(s)" in message and "and 5 more" in message


def test_failure_cases_are_ascending_within_each_column_and_check(demo_raw):
    # A reader of chunks keeps each chunk's first cases per column and check: they must be its
    # first rows.
    frame = demo_raw.copy()
    frame.loc[[40, 3, 17], "NUM_PRD"] = -1
    frame.loc[[9, 2], "gn_occ"] = "\x00"
    cases = _violation(frame).failures
    for _, group in cases.groupby(["column", "check"]):
        assert group["index"].is_monotonic_increasing


# --- a header repeated among the rows ---------------------------------------------------------


def test_repeated_header_is_one_short_line(demo_raw, tmp_path):
    path = tmp_path / "etb.csv"
    part = demo_raw.head(1000).to_csv(index=False)
    path.write_text(part * 3)  # three files concatenated: the header again at rows 1001, 2002
    violation = _violation_of_file(path)
    assert str(violation) == (
        "etb.csv: breaks the data contract — the header line is repeated at data rows "
        "1001, 2002 (files concatenated?)"
    )


def test_repeated_header_many_times_is_capped(demo_raw, tmp_path):
    path = tmp_path / "etb.csv"
    path.write_text(demo_raw.head(3).to_csv(index=False) * 14)  # header at rows 4, 8, ..., 52
    message = str(_violation_of_file(path))
    rows = ", ".join(str(4 * n) for n in range(1, MAX_ROWS_NAMED + 1))
    assert f"repeated at data rows {rows} and 3 more (files concatenated?)" in message


def test_repeated_header_and_another_failure_are_both_named(demo_raw, tmp_path):
    first, second = demo_raw.head(5).copy(), demo_raw.iloc[5:10].copy()
    second.loc[7, "NUM_PRD"] = -3  # data row 9: the header line is row 6
    path = tmp_path / "etb.csv"
    path.write_text(first.to_csv(index=False) + second.to_csv(index=False))
    message = str(_violation_of_file(path))
    assert "the header line is repeated at data rows 6 (files concatenated?)" in message
    assert _rows_named(message, "NUM_PRD") == [9]
    assert "coerce_dtype" not in message  # the header row's names are not type failures


def _violation_of_file(path) -> ContractViolation:
    with pytest.raises(ContractViolation) as caught:
        validate_frame(raw_extract_schema(), read_extract(path), path.name)
    return caught.value


# --- rows repeated exactly --------------------------------------------------------------------


def test_repeated_rows_are_a_quality_finding_naming_the_rows(demo_raw):
    frame = demo_raw.head(100).copy()
    frame.loc[40] = frame.loc[3]
    frame.loc[70] = frame.loc[3]
    frame.loc[55] = frame.loc[10]
    frame.loc[80, "C_ID"] = frame.loc[20, "C_ID"]  # the same number, another customer: legal
    findings = quality_findings(validate_frame(raw_extract_schema(), frame, SOURCE))
    assert findings.counts["duplicate_rows"] == 3
    assert findings.examples["duplicate_rows"] == ["data row 41", "data row 56", "data row 71"]


def test_repeated_rows_are_found_across_chunks(demo_raw):
    from affluent_assets.lib.data_quality import QualityFindings

    frame = demo_raw.head(300).copy()
    frame.iloc[250:262] = frame.iloc[10:22].to_numpy()  # 12 rows repeated two chunks later
    findings = QualityFindings()
    schema = raw_extract_schema()
    for start in range(0, 300, 100):
        chunk = frame.iloc[start : start + 100].copy()  # indexed by its rows' file positions
        findings.merge(quality_findings(validate_frame(schema, chunk, "x")))
    assert findings.counts["duplicate_rows"] == 12
    assert findings.examples["duplicate_rows"] == [f"data row {r}" for r in range(251, 261)]
    assert findings.total >= 12  # a warning: the quality check does not pass


# --- every documented rule of docs/data-contract.md (issue 19) ---------------------------------


@pytest.mark.parametrize("column", ["CASATD_CNT", "N_FUNDS", "ANN_N_TRX", "NUM_PRD"])
def test_a_fraction_in_a_count_column_is_rejected(demo_raw, column):
    frame = _as_float(demo_raw.copy(), column)
    row = int(frame[column].first_valid_index())
    frame.loc[row, column] = 2.5
    message = str(_violation(frame))
    assert f"column {column!r}: must be a whole number on 1 row(s): data rows {row + 1} (2.5)" in (
        message
    ), message


@pytest.mark.parametrize("column", list(DOCUMENTED_RANGES))
def test_a_value_outside_a_documented_range_is_a_warning(demo_raw, column):
    low, high = DOCUMENTED_RANGES[column]
    frame = _as_float(demo_raw.copy(), column)
    rows = frame.index[frame[column].notna()][:2]
    # Below the range where the contract allows it (no rejection for a negative), else above.
    below = low - 1 if column in ("MTHCASA", "MAXCASA", "MINCASA") or low > 0 else None
    frame.loc[rows[0], column] = high + 1
    frame.loc[rows[1], column] = below if below is not None else high * 2
    findings = quality_findings(validate_frame(raw_extract_schema(), frame, SOURCE))
    assert findings.counts[f"out_of_range_{column}"] == 2
    lines = quality_warnings(findings.counts, findings.examples, ("age_placeholder_122",))
    assert any(
        line.startswith(f"2 × {column} outside the contract's range {low:,.0f} to {high:,.0f}")
        for line in lines
    ), lines


@pytest.mark.parametrize("block", list(GAP_BLOCKS))
def test_a_gap_block_broken_apart_is_a_warning(demo_raw, block):
    frame = demo_raw.copy()
    columns = GAP_BLOCKS[block]
    full = frame.index[frame[list(columns)].notna().all(axis=1)][:1]
    frame.loc[full, columns[-1]] = np.nan  # one column of the block blank, the others not
    findings = quality_findings(validate_frame(raw_extract_schema(), frame, SOURCE))
    assert findings.counts[f"gap_block_{block}"] == 1
    assert findings.examples[f"gap_block_{block}"] == [f"data row {full[0] + 1}"]


def test_an_average_card_amount_that_is_not_a_twelfth_is_a_warning(demo_raw):
    frame = demo_raw.copy()
    row = frame.index[frame["ANN_TRN_AMT"].notna()][0]
    frame.loc[row, "AVG_TRN_AMT"] = frame.loc[row, "ANN_TRN_AMT"] / 10
    findings = quality_findings(validate_frame(raw_extract_schema(), frame, SOURCE))
    assert findings.counts["avg_trn_amt_not_annual_over_12"] == 1


def test_values_are_quoted_as_the_file_shows_them():
    assert [shown_value(v) for v in (np.float64(-5000.0), np.float64(2.5), 7, "forty")] == [
        "-5000", "2.5", "7", "'forty'",
    ]  # fmt: skip
    assert shown_value(np.float64("nan")) == "blank" and shown_value("PM\x00EB") == "'PM\\x00EB'"
