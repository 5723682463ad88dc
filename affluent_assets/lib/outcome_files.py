"""Campaign outcome files: the list a campaign worked, given back with whether each customer
upgraded. A file names each customer by `customer_key` (as on every list the platform gives out),
the `model_version` whose list it came from, `upgraded` (yes/no, true/false, 1/0), and, for a list
of a landed batch, its `batch_key` (blank or absent: the list of the bank's extract, made by the
main graph). Every row must match a customer that version scored in that batch; the whole file is
accepted or rejected, with the rows named."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pandera.pandas as pa

from affluent_assets.lib.extract_checks import ExtractError
from affluent_assets.lib.landing import quarantine, scan_landing
from affluent_assets.lib.validation import describe_failures, validate_frame
from affluent_assets.lib.warehouse import registered, relations

UPGRADED = {"yes": 1, "no": 0, "y": 1, "n": 0, "true": 1, "false": 0, "1": 1, "0": 0}
KEY = ["batch_key", "customer_key", "model_version"]
MAIN_LIST = ""  # batch_key of the main graph's list (the bank's extract)
BROKEN = "is not a valid outcomes file"
QUARANTINE = "quarantine"  # inside the outcomes folder


def _upgraded_values(values: pd.Series) -> pd.Series:
    return values.str.strip().str.lower().isin(list(UPGRADED))


def _matches(pattern: str, name: str) -> pa.Check:
    return pa.Check(lambda values: values.str.fullmatch(pattern), name=name)


SCHEMA = pa.DataFrameSchema(
    {
        "customer_key": pa.Column(str, _matches(r"\d+-\d+", "not a key like 1234-56 (C_ID-row)")),
        "model_version": pa.Column(str, _matches(r"\d+", "not a version number like 3")),
        "upgraded": pa.Column(
            str, pa.Check(_upgraded_values, name="not yes/no, true/false or 1/0")
        ),
        "batch_key": pa.Column(str),
    },
    coerce=True,
)


def read_outcome_file(path: str | Path) -> pd.DataFrame:
    """The file's rows as `batch_key, customer_key, model_version, upgraded` (0/1), in file
    order; ExtractError naming the file, the columns and the data rows when it is not valid."""
    path = Path(path)
    frame = _read_text_table(path)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    if "batch_key" not in frame:
        frame["batch_key"] = MAIN_LIST
    frame["batch_key"] = frame["batch_key"].fillna(MAIN_LIST).str.strip()
    frame["model_version"] = frame.get("model_version", pd.Series(dtype=str)).str.strip()
    valid = validate_frame(SCHEMA, frame, path.name, broken=BROKEN)
    repeated = valid.duplicated(KEY, keep=False)
    if repeated.any():
        _raise_rows(
            valid.loc[repeated, "customer_key"], "repeats a customer of the same list", path.name
        )
    valid = valid[KEY + ["upgraded"]].copy()
    valid["upgraded"] = valid["upgraded"].str.strip().str.lower().map(UPGRADED).astype("int64")
    return valid


def _read_text_table(path: Path) -> pd.DataFrame:
    """Every cell as text (a version `3` stays `3`, never `3.0`); blanks as missing."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, encoding="utf-8-sig")
        elif suffix == ".xlsx":
            frame = pd.read_excel(path, dtype=str, engine="calamine")
        elif suffix == ".parquet":
            frame = pd.read_parquet(path).astype("string").astype(object)
        else:
            raise ExtractError(path, f"unsupported file type ({suffix}); use .csv, .xlsx, .parquet")
    except ExtractError:
        raise
    except Exception as error:  # unreadable bytes, not a workbook, a broken Parquet footer
        problem = f"cannot be read as a table ({type(error).__name__}: {error})"
        raise ExtractError(path, problem) from None
    if frame.empty:
        raise ExtractError(path, "has no data rows")
    return frame.where(frame.notna(), None)


# What each batch's customers were given, by the version that scored them: flagged when the
# version predicted AFFLUENT or put them on a list (a list may cut below the threshold), and
# held back when the list drew them into its control group.
# table -> (its batch key, whether a row was flagged, whether it was on the list)
_PREDICTION_SOURCES = {
    "batch_scores": ("batch_key", "predicted_segment = 'AFFLUENT'", False),
    "batch_candidate_history": ("batch_key", "true", True),
    "scored_customers": (f"'{MAIN_LIST}'", "predicted_segment = 'AFFLUENT'", False),
    "candidate_history": (f"'{MAIN_LIST}'", "true", True),
}


def _control(con: duckdb.DuckDBPyConnection, table: str, is_list: bool) -> str:
    """Whether a row was held back: lists kept before control groups existed have no `group`."""
    if not is_list:
        return "false"
    columns = [column[0] for column in con.execute(f"select * from {table} limit 0").description]
    return """coalesce("group" = 'control', false)""" if "group" in columns else "false"


def match_predictions(
    con: duckdb.DuckDBPyConnection, outcomes: pd.DataFrame, source: str
) -> pd.DataFrame:
    """`outcomes` with the score each customer had (`affluent_probability`), whether that
    version flagged them (`flagged`) and whether its list held them back as control
    (`control`, 0/1); ExtractError naming the rows that match nothing scored."""
    present = relations(con)
    branches = [
        f"select {batch} as batch_key, customer_key, model_version::varchar as model_version,"
        f" affluent_probability, {flagged} as flagged, {_control(con, table, is_list)} as control"
        f" from {table}"
        for table, (batch, flagged, is_list) in _PREDICTION_SOURCES.items()
        if table in present
    ]
    if not branches:
        raise ExtractError(source, "nothing has been scored yet to compare outcomes with")
    with registered(con, "outcome_rows", outcomes.reset_index(names="file_position")):
        matched = con.execute(
            f"""
            with scored as ({" union all ".join(branches)})
            select o.*, max(s.affluent_probability) as affluent_probability,
                   bool_or(s.flagged) as flagged, bool_or(s.control) as control
            from outcome_rows o left join scored s using ({", ".join(KEY)})
            group by all order by o.file_position"""
        ).df()
    unmatched = matched.loc[matched["affluent_probability"].isna()]
    if len(unmatched):
        what = "not scored by that model version in that batch (batch_key, model_version)"
        _raise_rows(unmatched.set_index("file_position")["customer_key"], what, source)
    matched["flagged"] = matched["flagged"].astype("int64")
    matched["control"] = matched["control"].astype("int64")
    return matched.drop(columns="file_position")


def _raise_rows(keys: pd.Series, what: str, source: str) -> None:
    """ExtractError naming the data rows (`keys`' index is the file position) and their keys."""
    cases = pd.DataFrame(
        {"column": "customer_key", "check": what, "failure_case": keys.to_numpy(),
         "index": keys.index.to_numpy()}
    )  # fmt: skip
    raise ExtractError(source, describe_failures(cases, broken=BROKEN))


@dataclass
class OutcomeFolderRead:
    """Every outcome file in a folder, answered: the matched rows of the accepted files, and for
    each file what became of it (accepted with its counts, or quarantined with the reason)."""

    records: pd.DataFrame
    accepted: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)


def read_outcome_folder(con: duckdb.DuckDBPyConnection, folder: str | Path) -> OutcomeFolderRead:
    """Read and match every outcome file in `folder`; a bad one is moved to `folder/quarantine`
    with its reason (`landing.quarantine`), so it is answered once and never read again."""
    frames, read = [], OutcomeFolderRead(pd.DataFrame())
    for name in sorted(scan_landing(folder)):
        path = Path(folder) / name
        try:
            matched = match_predictions(con, read_outcome_file(path), name)
        except ExtractError as error:
            quarantine(path, Path(folder) / QUARANTINE, str(error))
            read.rejected[name] = str(error)
            continue
        frames.append(matched.assign(outcome_file=name))
        versions = ", ".join(f"v{v}" for v in sorted(matched["model_version"].unique(), key=int))
        held_back = int(matched["control"].sum())
        control = f", {held_back:,} of them control" if held_back else ""
        read.accepted[name] = (
            f"{len(matched):,} customers{control}, {int(matched['upgraded'].sum()):,} upgraded "
            f"({versions})"
        )
    if frames:
        read.records = pd.concat(frames, ignore_index=True)
    return read
