"""Campaign outcome files: read exactly, matched to what the named model version predicted (the
main graph's list or a landed batch's), and each kind of bad file rejected whole with the file,
the column and the rows named, moved to quarantine with its reason."""

import duckdb
import pandas as pd
import pytest

from affluent_assets.lib import outcomes
from affluent_assets.lib.extract_checks import ExtractError
from affluent_assets.lib.outcome_files import (
    match_predictions,
    read_outcome_file,
    read_outcome_folder,
)


@pytest.fixture
def con():
    """Scores as the main graph stores them: v3 scores customers 1-0..1-99 (flagged above 0.5)
    and an older list of v2 holds 1-80..1-99; a landed batch `march.csv` was scored by v3."""
    con = duckdb.connect()
    con.execute("""
        create table scored_customers as
        select '1-' || i as customer_key, '3' as model_version, i / 100 as affluent_probability,
               case when i > 50 then 'AFFLUENT' else 'NORMAL' end as predicted_segment
        from range(100) t(i)""")
    con.execute("""
        create table candidate_history as
        select '1-' || i as customer_key, '2' as model_version, i / 100 as affluent_probability
        from range(80, 100) t(i)""")
    con.execute("""
        create view batch_scores as
        select 'march.csv' as batch_key, '7-' || i as customer_key, '3' as model_version,
               i / 10 as affluent_probability,
               case when i >= 5 then 'AFFLUENT' else 'NORMAL' end as predicted_segment,
               null::varchar as c_seg
        from range(10) t(i)""")
    yield con
    con.close()


def write(folder, name: str, frame: pd.DataFrame):
    path = folder / name
    if name.endswith(".xlsx"):
        frame.to_excel(path, index=False)
    elif name.endswith(".parquet"):
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


def rejection(tmp_path, name: str, frame: pd.DataFrame, con=None) -> str:
    path = write(tmp_path, name, frame)
    with pytest.raises(ExtractError) as caught:
        read = read_outcome_file(path)
        if con is not None:
            match_predictions(con, read, name)
    return str(caught.value)


def test_upgraded_values_and_names_are_read_as_people_write_them(tmp_path):
    frame = pd.DataFrame(
        {
            " Customer_Key ": ["1-90", "1-91", "1-10", "1-85", "1-86", "1-87"],
            "MODEL_VERSION": [3, 3, 3, 2, 2, 2],
            "Upgraded": ["Yes", " no", "1", "TRUE", "n", "0"],
            "called_by": ["ann"] * 6,
        }
    )
    for name in ("list.csv", "list.xlsx", "list.parquet"):
        read = read_outcome_file(write(tmp_path, name, frame))
        assert read["upgraded"].tolist() == [1, 0, 1, 1, 0, 0], name
        assert read["model_version"].tolist() == ["3", "3", "3", "2", "2", "2"], name
        assert (read["batch_key"] == "").all() and list(read.columns) == [
            "batch_key", "customer_key", "model_version", "upgraded",
        ]  # fmt: skip


def test_rows_match_the_named_versions_list_or_scores(con, tmp_path):
    frame = pd.DataFrame(
        {
            "batch_key": ["", "", "", "march.csv", "march.csv"],
            "customer_key": ["1-90", "1-10", "1-85", "7-9", "7-1"],
            "model_version": ["3", "3", "2", "3", "3"],
            "upgraded": ["yes", "no", "yes", "no", "yes"],
        }
    )
    matched = match_predictions(con, read_outcome_file(write(tmp_path, "m.csv", frame)), "m.csv")
    assert matched["affluent_probability"].tolist() == pytest.approx([0.9, 0.1, 0.85, 0.9, 0.1])
    # v3 flagged 1-90 (score above 0.5) and 7-9, not 1-10 or 7-1; 1-85 was on v2's list
    assert matched["flagged"].tolist() == [1, 0, 1, 1, 0]


def test_realized_figures_of_an_outcome_file_by_hand(con, tmp_path):
    keys = [f"1-{i}" for i in (99, 98, 97, 96, 95, 60, 55, 40, 30, 20)]
    upgraded = ["yes", "yes", "no", "yes", "no", "no", "no", "yes", "no", "no"]
    frame = pd.DataFrame({"customer_key": keys, "model_version": "3", "upgraded": upgraded})
    matched = match_predictions(con, read_outcome_file(write(tmp_path, "c.csv", frame)), "c.csv")
    [row] = outcomes.realized_outcomes(con, matched).to_dict(orient="records")
    # flagged: the seven above 0.5, of whom 3 upgraded; 4 upgraded in all (one not flagged)
    assert (row["source"], row["model_version"]) == (outcomes.OUTCOME_FILES, "3")
    assert (row["customers"], row["flagged"], row["affluent"]) == (10, 7, 4)
    assert row["realized_precision"] == pytest.approx(3 / 7)
    assert row["realized_recall"] == pytest.approx(3 / 4)
    # top 20% of 10 = the 2 highest scores (1-99, 1-98): both upgraded
    assert row["precision_top_20pct"] == 1.0 and row["recall_top_20pct"] == pytest.approx(2 / 4)


def test_a_file_of_called_customers_only_has_no_recall(con, tmp_path):
    frame = pd.DataFrame({"customer_key": ["1-90", "1-91"], "model_version": 3, "upgraded": [1, 0]})
    matched = match_predictions(con, read_outcome_file(write(tmp_path, "c.csv", frame)), "c.csv")
    [row] = outcomes.realized_outcomes(con, matched).to_dict(orient="records")
    assert row["realized_precision"] == 0.5 and pd.isna(row["realized_recall"])


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (
            pd.DataFrame({"customer_key": ["1-1"], "model_version": ["3"]}),
            "missing column 'upgraded'",
        ),
        (
            pd.DataFrame(
                {
                    "customer_key": ["1-1", "1-2", "1-3"],
                    "model_version": "3",
                    "upgraded": ["yes", "maybe", "no"],
                }
            ),  # fmt: skip
            "column 'upgraded': not yes/no, true/false or 1/0 on 1 row(s): data rows 2 ('maybe')",
        ),
        (
            pd.DataFrame(
                {"customer_key": ["1-1", None, "C1"], "model_version": "3", "upgraded": "no"}
            ),  # fmt: skip
            "column 'customer_key': blank where a value is required on 1 row(s): data rows 2",
        ),
        (
            pd.DataFrame({"customer_key": ["1-1", "C1"], "model_version": "3", "upgraded": "no"}),
            "column 'customer_key': not a key like 1234-56 (C_ID-row) on 1 row(s): data rows 2",
        ),
        (
            pd.DataFrame({"customer_key": ["1-1"], "model_version": ["v3"], "upgraded": "no"}),
            "column 'model_version': not a version number like 3 on 1 row(s): data rows 1 ('v3')",
        ),
        (
            pd.DataFrame(
                {
                    "customer_key": ["1-1", "1-2", "1-1"],
                    "model_version": "3",
                    "upgraded": ["yes", "no", "no"],
                }
            ),  # fmt: skip
            "column 'customer_key': repeats a customer of the same list on 2 row(s): "
            "data rows 1 ('1-1'), 3 ('1-1')",
        ),
        (
            pd.DataFrame(columns=["customer_key", "model_version", "upgraded"]),
            "has no data rows",
        ),
    ],
    ids=[
        "missing column",
        "bad upgraded",
        "blank key",
        "bad key",
        "bad version",
        "repeat",
        "empty",
    ],
)
def test_each_kind_of_bad_file_names_file_column_and_rows(tmp_path, frame, expected):
    message = rejection(tmp_path, "bad.csv", frame)
    assert message.startswith("bad.csv: ") and expected in message


def test_rows_nothing_scored_are_named(con, tmp_path):
    frame = pd.DataFrame(
        {
            "batch_key": ["", "", "march.csv", "april.csv"],
            "customer_key": ["1-90", "1-5", "7-3", "7-3"],
            "model_version": ["3", "2", "3", "3"],  # 1-5 was never on v2's list
            "upgraded": "no",
        }
    )
    message = rejection(tmp_path, "late.csv", frame, con)
    assert "column 'customer_key': not scored by that model version in that batch" in message
    assert "on 2 row(s): data rows 2 ('1-5'), 4 ('7-3')" in message


def test_unreadable_and_unknown_files_are_answered(con, tmp_path):
    (tmp_path / "broken.xlsx").write_bytes(b"not a workbook")
    with pytest.raises(ExtractError, match=r"broken.xlsx: cannot be read as a table"):
        read_outcome_file(tmp_path / "broken.xlsx")
    (tmp_path / "notes.txt").write_text("customer_key,upgraded\n")
    with pytest.raises(ExtractError, match=r"notes.txt: unsupported file type \(.txt\)"):
        read_outcome_file(tmp_path / "notes.txt")


def test_a_folder_keeps_good_files_and_quarantines_bad_ones_with_their_reason(con, tmp_path):
    good = pd.DataFrame({"customer_key": ["1-90", "1-91"], "model_version": 3, "upgraded": 1})
    write(tmp_path, "good.csv", good)
    write(tmp_path, "bad.csv", good.assign(upgraded="perhaps"))
    read = read_outcome_folder(con, tmp_path)
    assert read.accepted == {"good.csv": "2 customers, 2 upgraded (v3)"}
    assert (
        list(read.rejected) == ["bad.csv"] and "data rows 1 ('perhaps')" in read.rejected["bad.csv"]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.csv", "quarantine"]
    reason = (tmp_path / "quarantine" / "bad.csv.reason.txt").read_text()
    assert reason.startswith("file: bad.csv\n") and "not yes/no" in reason
    again = read_outcome_folder(con, tmp_path)  # the bad file is not read twice
    assert not again.rejected and len(again.records) == 2
