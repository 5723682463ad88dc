"""Read an ETB extract (Excel `Data` sheet, CSV or Parquet) exactly as the contract describes.

Every failure raises ExtractError, whose message names the file and, where it applies, the
column and the rows, so a person can fix the file without reading a stack trace.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from python_calamine import CalamineWorkbook

from affluent_assets.lib.contract import DATA_SHEET

EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")
EXTRACT_SUFFIXES = (*EXCEL_SUFFIXES, ".csv", ".parquet")


class ExtractError(ValueError):
    """A file that cannot be read as an ETB extract; the message says why, for a person."""

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path.name}: {problem}")


def find_extract(location: str | Path) -> Path | None:
    """The extract at `location`: the file itself, or the newest extract file in a folder."""
    location = Path(location)
    if location.is_file():
        return location
    if not location.is_dir():
        return None
    candidates = [
        p
        for p in location.iterdir()
        if p.is_file()
        and p.suffix.lower() in EXTRACT_SUFFIXES
        and not p.name.startswith((".", "~$"))
    ]
    return max(candidates, key=lambda p: (p.stat().st_mtime, p.name)) if candidates else None


def read_extract(path: str | Path) -> pd.DataFrame:
    """The table of one extract file, with pandas' own type inference (no coercion here)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXTRACT_SUFFIXES:
        raise ExtractError(
            path, f"unsupported file type {suffix!r}; expected one of {', '.join(EXTRACT_SUFFIXES)}"
        )
    if not path.exists():
        raise ExtractError(path, "file not found")
    if path.stat().st_size == 0:
        raise ExtractError(path, "the file is empty (0 bytes)")
    reader = (
        _read_excel
        if suffix in EXCEL_SUFFIXES
        else _read_csv
        if suffix == ".csv"
        else _read_parquet
    )
    try:
        frame = reader(path)
    except ExtractError:
        raise
    except Exception as exc:  # corrupt content the readers do not describe themselves
        raise ExtractError(path, f"unreadable file ({type(exc).__name__}: {exc})") from exc
    if frame.empty:
        raise ExtractError(path, "the table has a header but no data rows")
    return frame


def _check_header(path: Path, columns: list[str]) -> None:
    blank = [
        i + 1
        for i, c in enumerate(columns)
        if str(c).strip() == "" or str(c).startswith("Unnamed:")
    ]
    if blank:
        raise ExtractError(path, f"header has blank column names at positions {blank}")
    repeated = sorted(name for name, count in Counter(map(str, columns)).items() if count > 1)
    if repeated:
        raise ExtractError(path, f"duplicated header: column(s) {repeated} appear more than once")


def _read_excel(path: Path) -> pd.DataFrame:
    try:
        workbook = CalamineWorkbook.from_path(str(path))
        sheets = workbook.sheet_names
        header = (
            workbook.get_sheet_by_name(DATA_SHEET).to_python(nrows=1)
            if DATA_SHEET in sheets
            else None
        )
        workbook.close()
    except Exception as exc:  # calamine raises several types for a corrupt workbook
        raise ExtractError(path, f"unreadable workbook ({type(exc).__name__}: {exc})") from exc
    if DATA_SHEET not in sheets:
        raise ExtractError(path, f"workbook has no sheet named {DATA_SHEET!r} (sheets: {sheets})")
    if not header:
        raise ExtractError(path, f"sheet {DATA_SHEET!r} is empty")
    _check_header(path, [str(c) for c in header[0]])
    try:
        return pd.read_excel(path, sheet_name=DATA_SHEET, engine="calamine")
    except Exception as exc:
        raise ExtractError(path, f"unreadable sheet {DATA_SHEET!r} ({exc})") from exc


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError as exc:
        raise _not_utf8(path) from exc
    if not header:
        raise ExtractError(path, "the file has no header row")
    _check_header(path, header)
    try:
        return pd.read_csv(path, encoding="utf-8-sig", encoding_errors="strict", low_memory=False)
    except UnicodeDecodeError as exc:
        raise _not_utf8(path) from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ExtractError(path, f"malformed CSV ({exc})") from exc


def _not_utf8(path: Path) -> ExtractError:
    """Locate the first invalid byte in the whole file: the offsets in a decoder's exception are
    relative to whichever buffer it was decoding, so they cannot give the line."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        where = "the header" if line == 1 else f"data row {line - 1}"
        return ExtractError(
            path,
            f"not UTF-8 text (invalid byte 0x{data[exc.start]:02x} on line {line} of the file, "
            f"{where}); save it as UTF-8 CSV",
        )
    return ExtractError(path, "not UTF-8 text")


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        names = pq.read_schema(path).names
    except Exception as exc:
        raise ExtractError(path, f"unreadable Parquet file ({exc})") from exc
    _check_header(path, names)
    return pd.read_parquet(path)
