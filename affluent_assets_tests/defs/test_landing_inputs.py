"""Issue 19's kinds of input through real landing runs: each bad file fails its run with the
exact message (file, column, rows, what to do), is quarantined and changes nothing stored; each
file that is scored with warnings stores its rows and lists each customer once."""

import gzip
import zipfile

import dagster as dg
import pandas as pd
import pytest
from openpyxl import Workbook

from affluent_assets.lib.extract_excel import _sheet_member
from affluent_assets.lib.landing import batch_key_for
from affluent_assets_tests.defs.test_landing_runs import (
    demo,
    failure_message,
    land,
    query,
    warehouse_state,
)


def case_and_spaces(path):
    demo(20).rename(columns={"C_AGE": "c_age", "NUM_PRD": " NUM_PRD"}).to_csv(path, index=False)


def negative_amount(path):
    frame = demo(20)
    frame.loc[3, "NUM_PRD"] = -2
    frame.loc[5, "Asset value"] = -5000.0
    frame.to_csv(path, index=False)


def fraction_in_a_count(path):
    frame = demo(20)
    frame.loc[2, "CASATD_CNT"] = 2.5
    frame.to_csv(path, index=False)


def gzip_named_csv(path):
    path.write_bytes(gzip.compress(demo(20).to_csv(index=False).encode()))


def binary_named_csv(path):
    path.write_bytes(bytes(range(256)) * 16)


def parquet_named_csv(path):
    demo(20).to_parquet(path, index=False)


def csv_named_xlsx(path):
    path.write_text(demo(5).to_csv(index=False))


def title_lines_above_csv_header(path):
    path.write_text("ETB customer extract\nas of 2024-06-30,,\n" + demo(5).to_csv(index=False))


def empty_rows_in_csv(path):
    text = demo(5).to_csv(index=False)
    path.write_text(text + ("," * 28 + "\n") * 3)


def _workbook(path, frame: pd.DataFrame, formula_at: tuple[int, str] | None = None):
    book = Workbook()
    book.active.title = "Data"
    book.active.append(list(frame.columns))
    rows = frame.astype(object).where(frame.notna(), None).values.tolist()
    if formula_at is not None:
        row, column = formula_at
        rows[row][list(frame.columns).index(column)] = "=J2*2"
    for values in rows:
        book.active.append(values)
    book.save(path)


def formula_without_value(path):
    # openpyxl saves the formula and no value, as many tools do: calamine would read a blank.
    _workbook(path, demo(6), formula_at=(2, "MTHCASA"))


def trailing_empty_text_rows(path):
    """A Data sheet whose used range ends in 20 rows of cells holding empty text."""
    frame = demo(5)
    _workbook(path, frame)
    columns = len(frame.columns)
    letters = [chr(65 + i) if i < 26 else "A" + chr(65 + i - 26) for i in range(columns)]
    rows = "".join(
        f'<row r="{r}">'
        + "".join(f'<c r="{c}{r}" t="inlineStr"><is><t></t></is></c>' for c in letters)
        + "</row>"
        for r in range(7, 27)
    )
    source = path.with_suffix(".tmp")
    path.rename(source)
    with zipfile.ZipFile(source) as book, zipfile.ZipFile(path, "w") as out:
        member = _sheet_member(book, "Data")
        for name in book.namelist():
            data = book.read(name)
            if name == member:
                data = data.replace(b"</sheetData>", rows.encode() + b"</sheetData>")
            out.writestr(name, data)
    source.unlink()


BAD_INPUTS = {
    # kind: (file name, writer, the message after "<name>: ")
    "header names differing only in case or spaces": (
        "cased.csv",
        case_and_spaces,
        "column names differ from the contract's only in case, spaces or underscores: "
        "'c_age' where 'C_AGE' is expected, ' NUM_PRD' where 'NUM_PRD' is expected; "
        "rename them exactly as the contract spells them",
    ),
    "values quoted as the file shows them": (
        "negative.csv",
        negative_amount,
        "breaks the data contract — column 'Asset value': must not be negative on 1 row(s): "
        "data rows 6 (-5000); column 'NUM_PRD': must not be negative on 1 row(s): "
        "data rows 4 (-2)",
    ),
    "fraction in a count column": (
        "fraction.csv",
        fraction_in_a_count,
        "breaks the data contract — column 'CASATD_CNT': must be a whole number on 1 row(s): "
        "data rows 3 (2.5)",
    ),
    "gzip-compressed file named .csv": (
        "packed.csv",
        gzip_named_csv,
        "this is a gzip-compressed file, not CSV text (it starts with bytes 1f 8b): "
        "decompress it (gunzip) and hand in the file inside",
    ),
    "binary data named .csv": (
        "binary.csv",
        binary_named_csv,
        "this is binary data, not CSV text (432 of its first 4096 bytes are control "
        "characters): export the table as CSV UTF-8",
    ),
    "Parquet named .csv": (
        "parquet.csv",
        parquet_named_csv,
        "this is a Parquet file, not CSV text (it starts with bytes 50 41 52 31): name it .parquet",
    ),
    "CSV named .xlsx": (
        "text.xlsx",
        csv_named_xlsx,
        "this is text (it starts 'C_ID,C_AGE,PC,C_EDU,C_HSE,gn_occ,INCM_TY'), not an Excel "
        "workbook: if it is a CSV file, name it .csv",
    ),
    "title lines above a CSV header": (
        "titled.csv",
        title_lines_above_csv_header,
        "the header is on line 3 of the file, not line 1; delete the 2 line(s) above it",
    ),
    "empty rows in a CSV": (
        "commas.csv",
        empty_rows_in_csv,
        "breaks the data contract — 3 empty row(s), with no value in any column (cells blank "
        "or holding only empty text): data rows 6-8; delete them",
    ),
    "xlsx formula with no saved value": (
        "formula.xlsx",
        formula_without_value,
        "1 formula cell(s) of sheet 'Data' hold no saved value (the tool that wrote the "
        "workbook did not calculate them) — column 'MTHCASA': data rows 3 ('=J2*2'); open the "
        "workbook in Excel and save it, or paste the values in place of the formulas",
    ),
    "workbook ending in rows of empty text": (
        "trailing.xlsx",
        trailing_empty_text_rows,
        "breaks the data contract — 20 empty row(s), with no value in any column (cells blank "
        "or holding only empty text): data rows 6-15 and 10 more; delete them",
    ),
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_input_gets_its_exact_message_and_is_quarantined(scored_stores, kind):
    name, write, problem = BAD_INPUTS[kind]
    write(scored_stores.landing / name)
    before = warehouse_state(scored_stores)
    result = scored_stores.run(batch_key_for(name))
    assert not result.success
    message = failure_message(result)
    assert message.startswith(f"{name}: {problem} (moved to "), message
    assert "np." not in message
    assert not (scored_stores.landing / name).exists()
    reason = (scored_stores.quarantine / f"{name}.reason.txt").read_text()
    assert reason.endswith(f"\n\n{name}: {problem}\n")
    assert warehouse_state(scored_stores) == before


@pytest.fixture
def scored_stores(landing_stores):
    land(landing_stores, "previous.csv", seed=1)
    assert landing_stores.run("previous.csv").success
    return landing_stores


def quality(result):
    return next(c for c in result.get_asset_check_evaluations() if c.check_name == "data_quality")


def test_repeated_rows_are_stored_and_each_customer_is_listed_once(landing_stores):
    frame = demo(600, seed=13)
    frame.iloc[300:600] = frame.iloc[0:300].to_numpy()  # the second half repeats the first
    land(landing_stores, "twice.csv", frame)
    result = landing_stores.run("twice.csv", chunk_rows=250)
    assert result.success
    assert query(landing_stores, "select count(*) n from batch_scores").loc[0, "n"] == 600
    listed = query(landing_stores, "select source_row from batch_candidates")["source_row"]
    assert len(listed) > 0 and listed.max() <= 300  # only the first of each pair
    flagged = query(
        landing_stores,
        "select count(*) n from batch_scores where predicted_segment = 'AFFLUENT' "
        "and source_row <= 300",
    ).loc[0, "n"]
    assert len(listed) == flagged
    warnings = quality(result).metadata["warnings"].value
    assert warnings[0].startswith(
        "300 × row(s) repeat an earlier row exactly (scored, but listed once on the call list)"
        " (e.g. data row 301, data row 302"
    ), warnings


def test_a_value_outside_the_documented_range_is_scored_with_a_warning(landing_stores):
    frame = demo(50, seed=14)
    frame.loc[[3, 9], "CC_LMT"] = [450_000.0, 500_000.0]
    land(landing_stores, "limits.csv", frame)
    result = landing_stores.run("limits.csv")
    assert result.success
    assert query(landing_stores, "select count(*) n from batch_scores").loc[0, "n"] == 50
    check = quality(result)
    assert not check.passed and check.metadata["out_of_range_CC_LMT"].value == 2
    assert check.metadata["warnings"].value == [
        "2 × CC_LMT outside the contract's range 0 to 380,000 (e.g. 450000, 500000)"
    ]


def test_a_new_version_of_a_batch_says_what_it_replaces(scored_stores):
    land(scored_stores, "previous.csv", rows=120, seed=9)
    result = scored_stores.run("previous.csv")
    assert result.success
    scores = next(
        e.step_materialization_data.materialization
        for e in result.get_asset_materialization_events()
        if e.step_materialization_data.materialization.asset_key.to_user_string() == "batch_scores"
    )
    replaced = scores.metadata["replaced"].value
    assert replaced.startswith(
        "replaces batch 'previous.csv': its 300 rows of different content (sha256 "
    ), replaced
    assert replaced.endswith("the earlier list stays in batch_candidate_history")
    assert query(scored_stores, "select count(*) n from batch_scores").loc[0, "n"] == 120


def test_no_empty_staging_folder_is_left_behind(scored_stores):
    land(scored_stores, "second.csv", seed=2)
    assert scored_stores.run("second.csv").success
    (scored_stores.landing / "bad.csv").write_bytes(b"")
    assert not scored_stores.run("bad.csv").success
    land(scored_stores, "copy.csv", seed=2)  # same content as second.csv
    assert scored_stores.run("copy.csv").success
    assert list((scored_stores.lake / "_staging").iterdir()) == []


def test_a_nul_in_the_last_chunk_is_found_before_any_row_is_scored(scored_stores, monkeypatch):
    frame = demo(900, seed=15)
    frame["MTHCASA"] = frame["MTHCASA"].astype(object)
    frame.loc[899, "MTHCASA"] = "12\x003"
    frame.to_csv(scored_stores.landing / "late_nul.csv", index=False)
    progress = []
    resources = scored_stores.resources()
    resources["scoring_progress"] = dg.ResourceDefinition.hardcoded_resource(
        lambda phase, rows: progress.append((phase, rows))
    )
    monkeypatch.setattr(scored_stores, "resources", lambda: resources)
    before = warehouse_state(scored_stores)
    result = scored_stores.run("late_nul.csv", chunk_rows=200)
    assert not result.success
    assert failure_message(result).startswith(
        "late_nul.csv: breaks the data contract — column 'MTHCASA': value of the wrong type "
        "(coerce_dtype('float64')) on 1 row(s): data rows 900 ('12\\x003') (moved to "
    ), failure_message(result)
    assert progress == []  # no chunk was scored before the NUL was found
    assert warehouse_state(scored_stores) == before
