"""read_extract / find_extract: good files in every format, and every kind of bad file rejected
with a message that names the file (and the column or row where one applies)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import Workbook

from affluent_assets.lib.contract import DATA_SHEET, RAW_COLUMNS
from affluent_assets.lib.demo_files import write_extract
from affluent_assets.lib.extract_checks import ExtractError
from affluent_assets.lib.extract_io import (
    find_extract,
    read_extract,
)

PANDAS_DTYPES = {"int": "int64", "float": "float64", "text": "object"}


def _rejects(path: Path, *fragments: str) -> str:
    """read_extract must raise ExtractError naming the file and every fragment; returns message."""
    with pytest.raises(ExtractError) as caught:
        read_extract(path)
    message = str(caught.value)
    assert message.startswith(f"{path.name}: "), message
    assert caught.value.path == path
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def _workbook(path: Path, sheets: dict[str, list[list]]) -> Path:
    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def _nan_blanks(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    return frame.astype(object).where(frame.notna(), np.nan).astype(frame.dtypes.to_dict())


# --- good files -------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx"])
def test_read_extract_round_trips_every_format(demo_raw, tmp_path, suffix):
    sample = demo_raw.head(300)
    path = write_extract(sample, tmp_path / f"extract{suffix}")

    frame = read_extract(path)

    assert list(frame.columns) == list(RAW_COLUMNS)
    assert len(frame) == 300
    expected_dtypes = {c: PANDAS_DTYPES[kind] for c, kind in RAW_COLUMNS.items()}
    assert frame.dtypes.astype(str).to_dict() == expected_dtypes
    # Text formats may differ in the last bit of a float (e.g. ANN_TRN_AMT / 12); Parquet reads a
    # blank text cell as None where the others read NaN; both are blank downstream.
    pd.testing.assert_frame_equal(
        _nan_blanks(frame), _nan_blanks(sample), check_exact=False, rtol=1e-12
    )
    assert frame["Asset value"].notna().all()  # the column with a space survives every format


def test_read_extract_without_label_column(demo_raw, tmp_path):
    path = write_extract(demo_raw.head(20).drop(columns="C_seg"), tmp_path / "rescore.csv")
    frame = read_extract(path)
    assert "C_seg" not in frame.columns
    assert len(frame) == 20


def test_data_sheet_found_by_name_not_position(tmp_path):
    path = _workbook(
        tmp_path / "extract.xlsx",
        {
            "Problem": [["Business problem: find hidden affluent customers."]],
            "Decoy": [["C_ID", "C_AGE"], [999, 99]],
            DATA_SHEET: [["C_ID", "C_AGE", "C_seg"], [1, 40, "NORMAL"], [2, 55, "AFFLUENT"]],
            "Dictionary": [["Feature", "Definition", "Remarks"]],
        },
    )
    frame = read_extract(path)
    assert list(frame.columns) == ["C_ID", "C_AGE", "C_seg"]
    assert frame["C_ID"].tolist() == [1, 2]
    assert frame["C_seg"].tolist() == ["NORMAL", "AFFLUENT"]


def test_demo_workbook_has_data_as_second_sheet(demo_raw, tmp_path):
    from python_calamine import CalamineWorkbook

    path = write_extract(demo_raw.head(5), tmp_path / "etb.xlsx")
    sheets = CalamineWorkbook.from_path(str(path)).sheet_names
    assert sheets.index(DATA_SHEET) == 1
    assert read_extract(path)["C_ID"].tolist() == demo_raw["C_ID"].head(5).tolist()


# --- bad files --------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx"])
def test_empty_file_rejected(tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    _rejects(path, "empty", "0 bytes")


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx"])
def test_header_without_rows_rejected(demo_raw, tmp_path, suffix):
    path = write_extract(demo_raw.iloc[:0], tmp_path / f"header_only{suffix}")
    _rejects(path, "header but no data rows")


def test_csv_with_only_a_blank_line_rejected(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("\n")
    _rejects(path, "no header row")


def test_workbook_without_data_sheet_rejected(tmp_path):
    path = _workbook(tmp_path / "no_data.xlsx", {"Sheet1": [["C_ID"], [1]], "Notes": [["x"]]})
    _rejects(path, "no sheet named 'Data'", "Sheet1", "Notes")


def test_workbook_with_empty_data_sheet_rejected(tmp_path):
    path = _workbook(tmp_path / "blank_data.xlsx", {"Problem": [["text"]], DATA_SHEET: []})
    _rejects(path, "'Data'", "empty")


def test_unreadable_workbook_rejected(tmp_path):
    path = tmp_path / "corrupt.xlsx"
    path.write_bytes(os.urandom(4096))
    _rejects(path, "unreadable workbook")


def test_unreadable_parquet_rejected(tmp_path):
    path = tmp_path / "corrupt.parquet"
    path.write_bytes(os.urandom(4096))
    _rejects(path, "unreadable Parquet")


def test_parquet_with_valid_footer_but_corrupt_pages_rejected(demo_raw, tmp_path):
    path = write_extract(demo_raw.head(200), tmp_path / "pages.parquet")
    data = bytearray(path.read_bytes())
    data[100:2000] = os.urandom(1900)  # the schema in the footer still reads
    path.write_bytes(bytes(data))
    _rejects(path, "unreadable")


def test_latin1_csv_rejected_with_the_row(demo_raw, tmp_path):
    sample = demo_raw.head(5).copy()
    sample.loc[2, "gn_occ"] = "CAFÉ OWNER"  # data row 3 = line 4 of the file
    path = tmp_path / "latin1.csv"
    sample.to_csv(path, index=False, encoding="latin-1")
    _rejects(path, "not UTF-8", "line 4", "data row 3")


def test_latin1_far_into_a_large_csv_names_the_right_line(demo_raw, tmp_path):
    # Beyond the first read buffer of both the header check and pandas' parser.
    sample = demo_raw.copy()
    sample.loc[1500, "C_EDU"] = "Diplôme"  # data row 1501 = line 1502
    path = tmp_path / "latin1_late.csv"
    sample.to_csv(path, index=False, encoding="latin-1")
    _rejects(path, "not UTF-8", "line 1502", "data row 1501")


def test_latin1_in_header_names_the_header(tmp_path):
    path = tmp_path / "latin1_header.csv"
    path.write_bytes("C_ID,Asset valué\n1,2\n".encode("latin-1"))
    _rejects(path, "not UTF-8", "line 1", "header")


def test_utf8_with_bom_is_read(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("C_ID,C_EDU\n1,Diplôme\n".encode("utf-8-sig"))
    frame = read_extract(path)
    assert list(frame.columns) == ["C_ID", "C_EDU"]
    assert frame["C_EDU"].tolist() == ["Diplôme"]


def test_duplicated_header_in_csv_rejected(demo_raw, tmp_path):
    sample = demo_raw.head(3)
    path = tmp_path / "dup.csv"
    header = ",".join([*sample.columns, "NUM_PRD"])
    rows = [",".join(map(str, [*row, 1])) for row in sample.astype(str).itertuples(index=False)]
    path.write_text("\n".join([header, *rows]) + "\n")
    _rejects(path, "duplicated header", "NUM_PRD")


def test_duplicated_header_in_workbook_rejected(tmp_path):
    path = _workbook(tmp_path / "dup.xlsx", {DATA_SHEET: [["C_ID", "C_AGE", "C_AGE"], [1, 40, 41]]})
    _rejects(path, "duplicated header", "C_AGE")


def test_blank_header_name_rejected(tmp_path):
    path = tmp_path / "blank_header.csv"
    path.write_text("C_ID,,C_AGE\n1,2,3\n")
    _rejects(path, "blank column names", "[2]")


@pytest.mark.parametrize("name", ["extract.txt", "extract.json", "extract"])
def test_unsupported_suffix_rejected(tmp_path, name):
    path = tmp_path / name
    path.write_text("C_ID\n1\n")
    _rejects(path, "unsupported file type")


@pytest.mark.parametrize("name", ["missing.csv", "missing.xlsx", "missing.parquet"])
def test_missing_file_rejected(tmp_path, name):
    _rejects(tmp_path / name, "file not found")


def test_extract_error_is_a_value_error_with_path_and_problem(tmp_path):
    error = ExtractError(tmp_path / "x.csv", "something broke")
    assert isinstance(error, ValueError)
    assert str(error) == "x.csv: something broke"
    assert error.problem == "something broke"


# --- find_extract -----------------------------------------------------------------------------


def _touch(path: Path, mtime: float) -> Path:
    path.write_bytes(b"x")
    os.utime(path, (mtime, mtime))
    return path


def test_find_extract_picks_newest_and_ignores_lock_and_other_files(tmp_path):
    base = 1_700_000_000
    _touch(tmp_path / "old.xlsx", base)
    newest = _touch(tmp_path / "new.csv", base + 100)
    _touch(tmp_path / "middle.parquet", base + 50)
    _touch(tmp_path / "~$new.xlsx", base + 500)  # Excel lock file
    _touch(tmp_path / ".hidden.csv", base + 600)
    _touch(tmp_path / "notes.txt", base + 700)
    (tmp_path / "folder.csv").mkdir()
    os.utime(tmp_path / "folder.csv", (base + 800, base + 800))

    assert find_extract(tmp_path) == newest


def test_find_extract_suffix_case_insensitive(tmp_path):
    found = _touch(tmp_path / "EXTRACT.XLSX", 1_700_000_000)
    assert find_extract(tmp_path) == found


def test_find_extract_file_missing_and_empty_folder(tmp_path):
    file = _touch(tmp_path / "given.csv", 1_700_000_000)
    assert find_extract(file) == file
    assert find_extract(tmp_path / "nowhere") is None
    empty = tmp_path / "empty"
    empty.mkdir()
    _touch(empty / "~$locked.xlsx", 1_700_000_000)
    assert find_extract(empty) is None


# --- control characters reach the contract check, whatever the reader -------------------------


def _chunks(path: Path, typed: bool) -> pd.DataFrame:
    from affluent_assets.lib.extract_io import open_extract

    with open_extract(path) as extract:
        return pd.concat(extract.chunks(chunk_rows=7, typed=typed))


def _with_control_characters(demo_raw: pd.DataFrame) -> pd.DataFrame:
    frame = demo_raw.head(30).copy()
    frame.loc[2, "gn_occ"] = "PM\x00EB"
    frame.loc[20, "C_EDU"] = "Dip\x01loma"
    frame.loc[21, "C_HSE"] = "HDB\x7f"
    return frame


@pytest.mark.parametrize("typed", [True, False], ids=["pyarrow", "pandas"])
def test_csv_readers_keep_nul_and_other_control_characters(demo_raw, tmp_path, typed):
    # pandas' C parser ends a value at NUL ('PM\0EB' would read as 'PM'): the reader must not.
    path = write_extract(_with_control_characters(demo_raw), tmp_path / "control.csv")
    frame = _chunks(path, typed)
    assert frame.loc[2, "gn_occ"] == "PM\x00EB"
    assert frame.loc[20, "C_EDU"] == "Dip\x01loma"
    assert frame.loc[21, "C_HSE"] == "HDB\x7f"
    assert len(frame) == 30


def test_pandas_reader_keeps_nul_in_a_numeric_column(demo_raw, tmp_path):
    # pyarrow cannot parse it as a number, so the file falls back to pandas; '12\0' must not
    # become 12.
    frame = demo_raw.head(10).copy()
    frame["MTHCASA"] = frame["MTHCASA"].astype(object)
    frame.loc[4, "MTHCASA"] = "12\x003"
    path = write_extract(frame, tmp_path / "nul_number.csv")
    assert _chunks(path, typed=False).loc[4, "MTHCASA"] == "12\x003"
    assert read_extract(path).loc[4, "MTHCASA"] == "12\x003"


def test_parquet_keeps_control_characters(demo_raw, tmp_path):
    path = write_extract(_with_control_characters(demo_raw), tmp_path / "control.parquet")
    frame = read_extract(path)
    assert frame.loc[2, "gn_occ"] == "PM\x00EB"
    assert frame.loc[20, "C_EDU"] == "Dip\x01loma"


def test_workbook_keeps_control_characters(tmp_path):
    # Excel stores a control character as _xHHHH_ in the sheet's XML; calamine decodes it.
    path = _workbook(
        tmp_path / "control.xlsx",
        {DATA_SHEET: [["C_ID", "gn_occ"], [1, "PMEB"], [2, "PM_x0000_EB"], [3, "A_x0001_B"]]},
    )
    assert read_extract(path)["gn_occ"].tolist() == ["PMEB", "PM\x00EB", "A\x01B"]


def test_control_character_in_header_rejected(tmp_path):
    path = tmp_path / "control_header.csv"
    path.write_bytes(b"C_ID,gn\x00occ,C_AGE\n1,PMEB,30\n")
    _rejects(path, "control characters in column names", "'gn\\x00occ' at position 2")


# --- other separators, displaced headers -------------------------------------------------------


@pytest.mark.parametrize(("separator", "shown"), [(";", "';'"), ("\t", "'\\t'"), ("|", "'|'")])
def test_csv_with_another_separator_is_named(demo_raw, tmp_path, separator, shown):
    path = tmp_path / "etb.csv"
    demo_raw.head(5).to_csv(path, index=False, sep=separator)
    message = _rejects(path)
    assert message == (
        f"etb.csv: this looks like a {shown}-separated file; the contract expects commas "
        f"(found 30 columns when split on {shown})"
    )


def test_one_column_csv_is_not_taken_for_another_separator(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("C_ID\n1\n2\n")
    assert read_extract(path)["C_ID"].tolist() == [1, 2]


@pytest.mark.parametrize(
    "above",
    [[["ETB customer extract"], ["as of 2024-06-30"]], [[], []]],
    ids=["title rows", "blank rows"],
)
def test_workbook_header_below_row_one_is_located(demo_raw, tmp_path, above):
    sample = demo_raw.head(3)
    rows = [*above, list(sample.columns), *sample.astype(object).values.tolist()]
    path = _workbook(tmp_path / "titled.xlsx", {DATA_SHEET: rows})
    message = _rejects(path)
    assert message == (
        "titled.xlsx: the header is on row 3 of sheet 'Data', not row 1; "
        "delete the 2 row(s) above it"
    )


def test_a_nul_in_a_number_is_found_by_pyarrow_not_the_python_parser(
    demo_raw, tmp_path, monkeypatch
):
    # The Python parser took about 2 minutes for 10M rows; the file is read as text by pyarrow.
    import affluent_assets.lib.extract_csv as extract_csv

    def no_pandas_reader(*args, **kwargs):
        raise AssertionError("pandas' CSV reader was used for a file with a NUL")

    frame = demo_raw.head(40).copy()
    frame["MTHCASA"] = frame["MTHCASA"].astype(object)
    frame.loc[33, "MTHCASA"] = "12\x003"
    path = write_extract(frame, tmp_path / "nul.csv")
    monkeypatch.setattr(extract_csv.pd, "read_csv", no_pandas_reader)
    read = _chunks(path, typed=False)
    assert read.loc[33, "MTHCASA"] == "12\x003" and len(read) == 40
    assert read["Asset value"].dtype == "float64"  # clean columns are numbers, as pandas reads
    assert read.loc[0, "Asset value"] == frame.loc[0, "Asset value"]
