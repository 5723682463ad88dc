"""Landing runs in process: a good file is scored once; each kind of bad file fails its run with
a message naming the file (and the column and rows where they apply), is moved to quarantine
with a reason, and leaves DuckDB exactly as it was."""

import hashlib
from dataclasses import replace

import dagster as dg
import duckdb
import pandas as pd
import pytest
from openpyxl import Workbook

from affluent_assets.lib.demo_data import generate_customers
from affluent_assets.lib.demo_files import write_extract
from affluent_assets.lib.landing import batch_key_for
from affluent_assets.lib.warehouse import replace_table
from affluent_assets_tests.defs.conftest import training_data

GOOD_ROWS = 300


def query(stores, sql: str, params=None) -> pd.DataFrame:
    with duckdb.connect(str(stores.warehouse), read_only=True) as con:
        return con.execute(sql, params or []).df()


def warehouse_state(stores) -> dict[str, list]:
    """Everything stored: the warehouse's tables and views, and every file in the lake."""
    lake = sorted(
        (str(p.relative_to(stores.lake)), hashlib.sha256(p.read_bytes()).hexdigest())
        for p in stores.lake.rglob("*")
        if p.is_file()
    ) if stores.lake.exists() else []  # fmt: skip
    if not stores.warehouse.exists():
        return {"lake": lake}
    with duckdb.connect(str(stores.warehouse), read_only=True) as con:
        tables = [r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()]
        views = con.execute("select view_name from duckdb_views() where not internal").fetchall()
        state = {"views": sorted(v[0] for v in views), "lake": lake}
        for table in tables:
            state[table] = con.execute(f'select * from "{table}" order by all').fetchall()
    return state


def demo(rows=GOOD_ROWS, seed=3, label=False) -> pd.DataFrame:
    frame = generate_customers(rows, seed=seed)
    return frame if label else frame.drop(columns="C_seg")


def land(stores, name: str, frame: pd.DataFrame | None = None, **kwargs):
    path = stores.landing / name
    write_extract(demo(**kwargs) if frame is None else frame, path)
    return path


def failure_message(result) -> str:
    failures = [e for e in result.all_events if e.is_step_failure]
    assert failures, "expected a failed step"
    return failures[0].step_failure_data.user_failure_data.description


@pytest.fixture
def scored_stores(landing_stores):
    """Stores that already hold one scored batch, so a bad run has something to damage."""
    land(landing_stores, "previous.csv", seed=1)
    assert landing_stores.run("previous.csv").success
    return landing_stores


def test_good_file_is_scored_with_the_champion(landing_stores):
    land(landing_stores, "etb.xlsx", label=True)
    assert landing_stores.run("etb.xlsx").success
    scores = query(landing_stores, "select * from batch_scores")
    assert len(scores) == GOOD_ROWS
    assert set(scores.columns) >= {
        "batch_key", "source_file", "content_hash", "customer_key", "c_id", "source_row",
        "affluent_probability", "score_decile", "predicted_segment", "threshold", "model_name",
        "model_version", "scored_at",
    }  # fmt: skip
    assert scores["customer_key"].is_unique
    assert scores["affluent_probability"].between(0, 1).all()
    assert scores["score_decile"].between(1, 10).all()
    assert (scores["model_version"] == landing_stores.models.model.version).all()
    assert set(scores["source_file"]) == {"etb.xlsx"}
    assert scores["source_row"].tolist() == list(range(1, GOOD_ROWS + 1))
    candidates = query(landing_stores, "select * from latest_candidates")
    flagged = scores[(scores["predicted_segment"] == "AFFLUENT") & (scores["c_seg"] != "AFFLUENT")]
    assert sorted(candidates["customer_key"]) == sorted(flagged["customer_key"])
    assert not list(landing_stores.lake.glob("_staging/*/*"))  # work in progress cleaned up


def test_landed_candidates_carry_reasons_and_expected_precision(landing_stores):
    land(landing_stores, "reasons.csv", rows=600, seed=8)
    assert landing_stores.run("reasons.csv").success
    candidates = query(landing_stores, "select * from latest_candidates order by candidate_rank")
    assert len(candidates) > 0
    assert candidates["reason_1"].notna().all()
    assert candidates["reason_1"].str.match(r"^.+ = .+ \(\+\d+\.\d\d\)$").all()
    assert candidates["expected_precision"].between(0, 1).all()
    # Calling deeper never raises the expected hit rate (the holdout curve is cumulative).
    assert candidates["expected_recall"].is_monotonic_increasing


def test_the_main_graphs_views_let_landing_runs_only_read_the_warehouse(landing_stores):
    from dagster_duckdb import DuckDBResource

    from affluent_assets.defs.landing.assets import landed_batch_views

    views = dg.materialize(
        [landed_batch_views],
        resources={"duckdb": DuckDBResource(database=str(landing_stores.warehouse))},
        run_config={
            "ops": {"landed_batch_views": {"config": {"lake_dir": str(landing_stores.lake)}}}
        },
    )
    assert views.success
    assert query(landing_stores, "select count(*) as n from latest_candidates")["n"][0] == 0
    land(landing_stores, "while reading.csv", seed=4)
    # An analyst's read-only connection stays open through the run. In one process DuckDB
    # refuses a second configuration of the same file: a run that opened the warehouse for
    # writing would fail here, as an analyst's query in another process would fail then.
    with duckdb.connect(str(landing_stores.warehouse), read_only=True) as analyst:
        assert landing_stores.run(batch_key_for("while reading.csv")).success
        rows = analyst.execute("select count(*) from batch_scores").fetchone()[0]
    assert rows == GOOD_ROWS


def test_latest_candidates_view_ranks_hidden_affluent_across_batches(landing_stores):
    land(landing_stores, "a.csv", seed=1)
    land(landing_stores, "b.parquet", seed=2, label=True)
    assert landing_stores.run("a.csv").success
    assert landing_stores.run("b.parquet").success
    view = query(landing_stores, "select * from latest_candidates order by candidate_rank")
    expected = query(
        landing_stores,
        "select count(*) as n from batch_scores where predicted_segment = 'AFFLUENT' "
        "and coalesce(c_seg, 'NORMAL') <> 'AFFLUENT'",
    )["n"][0]
    assert len(view) == expected > 0
    assert set(view["batch_key"]) == {"a.csv", "b.parquet"}
    assert view["candidate_rank"].tolist() == list(range(1, len(view) + 1))
    assert view["affluent_probability"].is_monotonic_decreasing
    assert (view["affluent_probability"] >= view["threshold"]).all()


def test_same_content_under_another_name_adds_no_rows(scored_stores):
    before = warehouse_state(scored_stores)
    land(scored_stores, "copy of previous.csv", seed=1)
    result = scored_stores.run(batch_key_for("copy of previous.csv"))
    assert result.success
    assert warehouse_state(scored_stores) == before
    observations = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    metadata = observations[0].asset_observation_data.asset_observation.metadata
    assert metadata["duplicate_of"].value == "previous.csv"


def test_rerunning_the_same_file_replaces_its_rows(scored_stores):
    assert scored_stores.run("previous.csv").success
    assert len(query(scored_stores, "select * from batch_scores")) == GOOD_ROWS


def test_changed_file_replaces_only_its_batch(scored_stores):
    land(scored_stores, "other.csv", seed=5)
    assert scored_stores.run("other.csv").success
    other = query(scored_stores, "select * from batch_scores where batch_key = 'other.csv'")
    land(scored_stores, "previous.csv", rows=120, seed=9)
    assert scored_stores.run("previous.csv").success
    counts = query(
        scored_stores, "select batch_key, count(*) n, count(distinct content_hash) h "
        "from batch_scores group by all order by all"
    )  # fmt: skip
    assert counts.values.tolist() == [["other.csv", GOOD_ROWS, 1], ["previous.csv", 120, 1]]
    again = query(scored_stores, "select * from batch_scores where batch_key = 'other.csv'")
    pd.testing.assert_frame_equal(again, other)


def test_file_name_with_quotes_spaces_and_dots_stays_contained(scored_stores):
    name = """O'Brien "list"; drop table batch_scores; --..v2.csv"""
    land(scored_stores, name, seed=4)
    key = batch_key_for(name)
    assert scored_stores.run(key).success
    rows = query(scored_stores, "select * from batch_scores where batch_key = ?", [key])
    assert len(rows) == GOOD_ROWS and set(rows["source_file"]) == {name}
    assert len(query(scored_stores, "select * from batch_scores")) == 2 * GOOD_ROWS


def write_bytes(path, data: bytes):
    path.write_bytes(data)


def csv_text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def no_data_sheet(path):
    book = Workbook()
    book.active.title = "Sheet1"
    book.active.append(["C_ID", "C_AGE"])
    book.active.append([1, 30])
    book.save(path)


def text_in_numeric(path):
    frame = demo(20)
    frame["C_AGE"] = frame["C_AGE"].astype(object)
    frame.loc[[2, 6], "C_AGE"] = "forty"
    frame.to_csv(path, index=False)


def non_utf8(path):
    frame = demo(20)
    frame.loc[4, "C_EDU"] = "Dipl\u00f4me"
    path.write_bytes(csv_text(frame).encode("latin-1"))


def duplicated_header(path):
    text = csv_text(demo(5))
    header, rest = text.split("\n", 1)
    path.write_text(header + ",C_AGE\n" + "".join(line + ",40\n" for line in rest.splitlines()))


def bad_label(path):
    frame = demo(20, label=True)
    frame.loc[7, "C_seg"] = "RICH"
    frame.to_csv(path, index=False)


def negative_count(path):
    frame = demo(20)
    frame.loc[3, "NUM_PRD"] = -2
    frame.to_parquet(path, index=False)


BAD_FILES = {
    # kind: (file name, writer, words the message must contain)
    "empty file": ("empty.csv", lambda p: write_bytes(p, b""), ["empty"]),
    "header without rows": (
        "header_only.csv",
        lambda p: p.write_text(csv_text(demo(1)).splitlines()[0] + "\n"),
        ["no data rows"],
    ),
    "missing column": (
        "missing.csv",
        lambda p: demo(20).drop(columns="NUM_PRD").to_csv(p, index=False),
        ["NUM_PRD", "missing column"],
    ),
    "renamed column": (
        "renamed.parquet",
        lambda p: demo(20).rename(columns={"Asset value": "Asset_value"}).to_parquet(p),
        ["Asset value"],
    ),
    "text in numeric column": ("text.csv", text_in_numeric, ["C_AGE", "3", "7", "forty"]),
    "unreadable workbook": (
        "broken.xlsx",
        lambda p: write_bytes(p, b"PK\x03\x04 this is not a workbook"),
        ["unreadable workbook"],
    ),
    "workbook without Data sheet": ("no_data.xlsx", no_data_sheet, ["no sheet named 'Data'"]),
    "CSV not UTF-8": ("latin1.csv", non_utf8, ["not UTF-8"]),
    "duplicated header": ("dup_header.csv", duplicated_header, ["duplicated header", "C_AGE"]),
    "label other than the two": ("label.csv", bad_label, ["C_seg", "8", "RICH"]),
    "negative count": ("negative.parquet", negative_count, ["NUM_PRD", "negative", "4"]),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_bad_file_is_quarantined_and_nothing_changes(scored_stores, kind):
    name, write, words = BAD_FILES[kind]
    write(scored_stores.landing / name)
    before = warehouse_state(scored_stores)
    result = scored_stores.run(batch_key_for(name))
    assert not result.success
    message = failure_message(result)
    for word in [name, *words]:
        assert word in message, f"{word!r} not in {message!r}"
    assert not (scored_stores.landing / name).exists()
    assert (scored_stores.quarantine / name).exists()
    reason = (scored_stores.quarantine / f"{name}.reason.txt").read_text()
    assert all(word in reason for word in [name, *words])
    assert warehouse_state(scored_stores) == before
    # The next good file is still scored.
    land(scored_stores, "next.csv", seed=6)
    assert scored_stores.run("next.csv").success


def test_bad_file_with_hostile_name_is_quarantined_inside_the_folder(scored_stores):
    name = "x..'; drop table batch_scores; -- ..csv"
    (scored_stores.landing / name).write_bytes(b"")
    before = warehouse_state(scored_stores)
    assert not scored_stores.run(batch_key_for(name)).success
    quarantined = {p.name for p in scored_stores.quarantine.iterdir()}
    assert quarantined == {name, name + ".reason.txt"}
    assert not any(p.name.endswith(".csv") for p in scored_stores.landing.parent.iterdir())
    assert warehouse_state(scored_stores) == before


def test_missing_model_fails_the_run_without_quarantine(landing_stores):
    land(landing_stores, "etb.csv")
    tracking = f"sqlite:///{landing_stores.warehouse.parent / 'empty-mlflow.db'}"
    landing_stores.models = replace(landing_stores.models, tracking_uri=tracking)
    result = landing_stores.run("etb.csv")
    assert not result.success
    assert "champion" in failure_message(result)
    assert (landing_stores.landing / "etb.csv").exists()
    assert not landing_stores.quarantine.exists()
    assert "batch_scores" not in warehouse_state(landing_stores)


def seed_training_tables(stores) -> None:
    """The warehouse holds the features and split the champion was trained on."""
    features, split = training_data()
    with duckdb.connect(str(stores.warehouse)) as con:
        replace_table(con, "customer_features", features)
        replace_table(con, "customer_split", split)


def drift_check(result):
    return next(c for c in result.get_asset_check_evaluations() if c.check_name == "feature_drift")


def test_drift_check_passes_for_a_batch_like_the_training_data(landing_stores):
    seed_training_tables(landing_stores)
    land(landing_stores, "steady.csv", rows=2000, seed=21)
    result = landing_stores.run("steady.csv")
    assert result.success
    check = drift_check(result)
    assert check.passed
    assert check.metadata["max_psi"].value < 0.25
    assert {"psi_num_prd", "psi_asset_value", "psi_gn_occ"} <= set(check.metadata)


def test_drift_check_warns_but_still_scores_a_shifted_batch(landing_stores):
    seed_training_tables(landing_stores)
    shifted = demo(rows=2000, seed=22)
    shifted["Asset value"] = shifted["Asset value"] * 30 + 100_000
    land(landing_stores, "shifted.csv", shifted)
    result = landing_stores.run("shifted.csv")
    assert result.success  # drift is a warning: the batch is still scored
    check = drift_check(result)
    assert not check.passed
    assert check.severity.value == "WARN"
    assert "asset_value" in check.description
    assert query(landing_stores, "select count(*) n from batch_scores").loc[0, "n"] == 2000


def test_drift_check_says_when_there_is_nothing_to_compare_with(landing_stores):
    land(landing_stores, "first.csv")
    check = drift_check(landing_stores.run("first.csv"))
    assert check.passed and "no training rows" in check.description


def test_chunked_scores_equal_whole_file_scores(landing_stores):
    """Chunk sizes that do not divide the row count give the same scores as one chunk."""
    land(landing_stores, "whole.csv", rows=1000, seed=11)
    assert landing_stores.run("whole.csv", chunk_rows=5000).success
    whole = query(landing_stores, "select * from batch_scores order by source_row")
    for chunk_rows in (7, 333):
        assert landing_stores.run("whole.csv", chunk_rows=chunk_rows).success
        chunked = query(landing_stores, "select * from batch_scores order by source_row")
        assert chunked["customer_key"].tolist() == whole["customer_key"].tolist()
        assert (chunked["affluent_probability"] - whole["affluent_probability"]).abs().max() < 1e-9
        assert chunked["score_decile"].tolist() == whole["score_decile"].tolist()
        assert chunked["source_row"].tolist() == list(range(1, 1001))


def test_bad_row_in_the_last_chunk_stores_nothing_and_names_its_file_row(scored_stores):
    frame = demo(1000, seed=12)
    frame["NUM_PRD"] = frame["NUM_PRD"].astype(object)
    frame.loc[[4, 996], "NUM_PRD"] = "many"  # data rows 5 and 997: the first and last chunk
    frame.loc[998, "C_AGE"] = -4  # data row 999
    path = scored_stores.landing / "late.csv"
    frame.to_csv(path, index=False)
    before = warehouse_state(scored_stores)
    result = scored_stores.run("late.csv", chunk_rows=300)
    assert not result.success
    message = failure_message(result)
    assert "data rows 5 ('many'), 997 ('many')" in message, message
    assert "'C_AGE'" in message and "999" in message, message
    assert warehouse_state(scored_stores) == before
    assert (scored_stores.quarantine / "late.csv").exists()


# --- issue 9: control characters, other separators, displaced and repeated headers, repeats ---


def control_characters(path):
    frame = demo(20)
    frame.loc[2, "gn_occ"] = "PM\x00EB"  # pandas' C parser would read 'PM'
    frame.loc[11, "C_EDU"] = "Dip\x01loma"
    frame.to_csv(path, index=False)


def control_character_in_parquet(path):
    frame = demo(20)
    frame.loc[6, "C_HSE"] = "HDB\x7f"
    frame.to_parquet(path, index=False)


def nul_in_a_number(path):
    frame = demo(20)
    frame["MTHCASA"] = frame["MTHCASA"].astype(object)
    frame.loc[4, "MTHCASA"] = "12\x003"  # must not be read as 12
    frame.to_csv(path, index=False)


def header_under_titles(path):
    book = Workbook()
    book.active.title = "Data"
    frame = demo(5)
    for row in [["ETB customer extract"], ["as of 2024-06-30"], list(frame.columns)]:
        book.active.append(row)
    for row in frame.astype(object).where(frame.notna(), None).values.tolist():
        book.active.append(row)
    book.save(path)


MORE_BAD_FILES = {
    # kind: (file name, writer, rows per chunk, words the message must contain)
    "control characters in CSV text": (
        "control.csv",
        control_characters,
        None,
        [
            "'gn_occ': holds a control character (no_control_characters)",
            "data rows 3 ('PM\\x00EB')",
            "'C_EDU'",
            "data rows 12 ('Dip\\x01loma')",
        ],
    ),
    "control character in Parquet text": (
        "control.parquet",
        control_character_in_parquet,
        None,
        ["'C_HSE'", "no_control_characters", "data rows 7 ('HDB\\x7f')"],
    ),
    "NUL in a number": (
        "nul_number.csv",
        nul_in_a_number,
        None,
        ["'MTHCASA'", "data rows 5 ('12\\x003')"],
    ),
    "semicolon-separated CSV": (
        "semicolon.csv",
        lambda p: demo(20).to_csv(p, index=False, sep=";"),
        None,
        ["this looks like a ';'-separated file; the contract expects commas (found 29 columns"],
    ),
    "workbook header under title rows": (
        "titled.xlsx",
        header_under_titles,
        None,
        ["the header is on row 3 of sheet 'Data', not row 1"],
    ),
    "files concatenated": (
        "concatenated.csv",
        lambda p: p.write_text(csv_text(demo(400)) * 3),
        300,  # the repeated header lines fall in the second and third chunks
        [
            "concatenated.csv: breaks the data contract — the header line is repeated at "
            "data rows 401, 802 (files concatenated?)"
        ],
    ),
}


@pytest.mark.parametrize("kind", list(MORE_BAD_FILES))
def test_more_bad_files_are_quarantined_with_a_clear_message(scored_stores, kind):
    name, write, chunk_rows, words = MORE_BAD_FILES[kind]
    write(scored_stores.landing / name)
    before = warehouse_state(scored_stores)
    result = scored_stores.run(batch_key_for(name), chunk_rows=chunk_rows)
    assert not result.success
    message = failure_message(result)
    for word in [name, *words]:
        assert word in message, f"{word!r} not in {message!r}"
    assert not any(ord(c) < 32 for c in message)  # control characters are shown escaped
    assert message.startswith(f"{name}: ") and len(message) < 600, message
    assert (scored_stores.quarantine / name).exists()
    reason = (scored_stores.quarantine / f"{name}.reason.txt").read_text()
    assert all(word in reason for word in [name, *words])
    assert warehouse_state(scored_stores) == before


def test_rows_repeated_exactly_are_scored_and_named_by_the_quality_check(landing_stores):
    frame = demo(600, seed=13)
    frame.iloc[450:453] = frame.iloc[[5, 6, 7]].to_numpy()  # a later chunk repeats three rows
    land(landing_stores, "repeats.csv", frame)
    result = landing_stores.run("repeats.csv", chunk_rows=200)
    assert result.success  # C_ID may repeat; a repeated row is a warning, not a rejection
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "data_quality")
    assert not check.passed
    assert check.metadata["duplicate_rows"].value == 3
    rows = check.metadata["examples"].value["duplicate_rows"]
    assert rows == ["data row 451", "data row 452", "data row 453"]
    assert query(landing_stores, "select count(*) n from batch_scores").loc[0, "n"] == 600


def test_a_re_executed_run_scores_with_the_champion_now_not_the_tag_it_copied():
    from affluent_assets.defs.landing.run import requested_version
    from affluent_assets.names import CHAMPION_VERSION_TAG

    tags = {CHAMPION_VERSION_TAG: "1"}
    first = dg.DagsterRun(job_name="landing_job", run_id="first", tags=tags)
    again = dg.DagsterRun(
        job_name="landing_job", run_id="again", tags=tags, parent_run_id="first",
        root_run_id="first",
    )  # fmt: skip
    assert requested_version(first) == "1"
    assert requested_version(again) is None
    assert requested_version(dg.DagsterRun(job_name="landing_job", run_id="ui")) is None
