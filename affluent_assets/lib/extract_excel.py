"""Read the `Data` sheet of an Excel extract into frames as pandas' Excel reader would give them,
in chunks of rows. A workbook has failure modes a CSV has not (no `Data` sheet, a header under
title rows, formulas saved without their values), so they are found and named here.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from itertools import chain, islice
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd
from python_calamine import CalamineWorkbook

from affluent_assets.lib.contract import DATA_SHEET
from affluent_assets.lib.extract_checks import (
    HEADER_SEARCH_ROWS,
    ExtractError,
    check_header,
    contract_names,
)

_FORMULA = re.compile(rb"<(?:\w+:)?f[\s>/]")
_SHEET_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def excel_chunks(path: Path, handle, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    try:
        workbook = CalamineWorkbook.from_filelike(handle)
        sheets = workbook.sheet_names
        sheet = workbook.get_sheet_by_name(DATA_SHEET) if DATA_SHEET in sheets else None
    except Exception as exc:  # calamine raises several types for a corrupt workbook
        raise ExtractError(path, f"unreadable workbook ({type(exc).__name__}: {exc})") from exc
    if sheet is None:
        raise ExtractError(path, f"workbook has no sheet named {DATA_SHEET!r} (sheets: {sheets})")
    rows = sheet.iter_rows()
    top = list(islice(rows, HEADER_SEARCH_ROWS))
    # A header under title rows: name its row rather than report the titles as column names.
    found = max(range(len(top)), key=lambda i: (contract_names(top[i]), -i), default=0)
    if found > 0 and contract_names(top[found]) > contract_names(top[0]):
        raise ExtractError(
            path,
            f"the header is on row {found + 1} of sheet {DATA_SHEET!r}, not row 1; "
            f"delete the {found} row(s) above it",
        )
    if not top or all(cell == "" for cell in top[0]):
        raise ExtractError(path, f"sheet {DATA_SHEET!r} is empty")
    header = [str(c) for c in top[0]]
    rows = chain(top[1:], rows)
    check_header(path, header)
    _check_formulas(path, handle, header)
    batch: list[list] = []
    for row in rows:
        batch.append(row)
        if chunk_rows is not None and len(batch) >= chunk_rows:
            yield _excel_frame(batch, header)
            batch = []
    if batch:
        yield _excel_frame(batch, header)


def _check_formulas(path: Path, handle, header: list[str]) -> None:
    """Formula cells with no stored value (tools such as openpyxl save the formula and leave
    the calculating to Excel): calamine reads them as blank, which would score a made-up
    row. Found in the sheet's XML, read as a stream; a sheet without formulas costs one scan."""
    handle.seek(0)
    try:
        with zipfile.ZipFile(handle) as book:
            member = _sheet_member(book, DATA_SHEET)
            if member is None or not _has_formula(book, member):
                return
            with book.open(member) as xml:
                missing = list(islice(_unvalued_formulas(xml), 10_000))
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError):
        return  # not an OOXML workbook calamine could read otherwise: it said what it could
    finally:
        handle.seek(0)
    if missing:
        raise ExtractError(path, _describe_formulas(missing, header))


def _sheet_member(book: zipfile.ZipFile, name: str) -> str | None:
    """The zip member holding sheet `name` (workbook.xml names it, its rels file locates it)."""
    rel_ns = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
    workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
    ids = [s.get(rel_ns) for s in workbook.iter(f"{_SHEET_NS}sheet") if s.get("name") == name]
    if not ids:
        return None
    rels = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    for rel in rels:
        if rel.get("Id") == ids[0]:
            target = rel.get("Target", "")
            return target.lstrip("/") if target.startswith("/") else f"xl/{target}"
    return None


def _has_formula(book: zipfile.ZipFile, member: str) -> bool:
    with book.open(member) as xml:
        tail = b""
        while block := xml.read(1 << 20):
            if _FORMULA.search(tail + block):
                return True
            tail = block[-16:]
    return False


def _unvalued_formulas(xml) -> Iterator[tuple[str, str]]:
    """(cell reference, formula) of each formula cell without a stored value."""
    for _, element in ElementTree.iterparse(xml):
        if element.tag != f"{_SHEET_NS}c":
            continue
        formula = element.find(f"{_SHEET_NS}f")
        value = element.find(f"{_SHEET_NS}v")
        inline = element.find(f"{_SHEET_NS}is")
        if formula is not None and inline is None and (value is None or not value.text):
            yield element.get("r", "?"), formula.text or ""
        element.clear()


def _describe_formulas(cells: list[tuple[str, str]], header: list[str]) -> str:
    by_column: dict[str, list[str]] = {}
    for reference, formula in cells:
        letters = re.match(r"[A-Z]+", reference)
        position = _column_index(letters.group(0)) if letters else -1
        column = header[position] if 0 <= position < len(header) else reference
        row = int(reference[len(letters.group(0)) :] or 0) - 1 if letters else 0
        by_column.setdefault(column, []).append(f"{row} ('={formula}')")
    parts = [
        f"column {column!r}: data rows {', '.join(rows[:10])}"
        + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")
        for column, rows in by_column.items()
    ]
    return (
        f"{len(cells):,} formula cell(s) of sheet {DATA_SHEET!r} hold no saved value (the tool "
        "that wrote the workbook did not calculate them) — "
        + "; ".join(parts)
        + "; open the workbook in Excel and save it, or paste the values in place of the formulas"
    )


def _column_index(letters: str) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1


def _excel_frame(rows: list[list], header: list[str]) -> pd.DataFrame:
    """Cells as pandas' Excel reader gives them: an empty cell is blank, and a column whose
    numbers are all whole reads as integers."""
    with pd.option_context("future.no_silent_downcasting", True):
        frame = pd.DataFrame(rows, columns=header, dtype=object).replace("", np.nan)
    frame = frame.infer_objects()
    for column in frame.columns:
        values = frame[column]
        if values.dtype == "float64" and values.notna().all() and (values % 1 == 0).all():
            frame[column] = values.astype("int64")
    return frame
