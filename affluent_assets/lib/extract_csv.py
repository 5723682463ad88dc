"""Read a CSV extract into frames, in chunks of rows: fast with the contract's column types
(pyarrow, `typed_csv_chunks`), or with pandas' own type inference (`csv_chunks`) when a value
does not parse, so that the contract check can name every bad row.

A CSV fails in ways a workbook does not (another separator, title lines above the header, bytes
that are not UTF-8, a NUL byte), and each is found and named here with its line in the file.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from affluent_assets.lib.contract import RAW_COLUMNS
from affluent_assets.lib.extract_checks import (
    HEADER_SEARCH_ROWS,
    ExtractError,
    check_header,
    contract_names,
)

# What pandas reads as blank in a CSV; the typed reader is told the same, so both agree.
BLANK_TEXTS = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
]  # fmt: skip
# Separators other than the comma that a spreadsheet may save a "CSV" with.
OTHER_DELIMITERS = (";", "\t", "|")
# Small blocks: the reader decodes several at once on its threads, and its memory grows much
# faster than the block (16 MiB blocks held ~700 MiB, 1 MiB ~50), while reading no slower.
_CSV_BLOCK_BYTES = 1 << 20


class TypedReadFailed(Exception):
    """The fast typed CSV reader met a value it cannot parse as its column's type. Read the file
    again with `typed=False`: pandas' own inference then lets the contract name every bad row."""


def _csv_header(path: Path, handle) -> list[str]:
    handle.seek(0)
    first = handle.readline()
    handle.seek(0)
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, handle) from exc
    header = next(csv.reader([text]), None)
    if not header:
        raise ExtractError(path, "the file has no header row")
    if len(header) == 1:
        _check_delimiter(path, text)
    _check_title_lines(path, handle, header)
    check_header(path, header)
    return header


def _check_title_lines(path: Path, handle, header: list[str]) -> None:
    """A header under title lines (a report's heading, a date): name the line it is on rather
    than report the titles as column names. Rewinds the file."""
    if contract_names(header) * 2 > len(RAW_COLUMNS):
        return
    lines = [handle.readline(1 << 16) for _ in range(HEADER_SEARCH_ROWS)]
    handle.seek(0)
    texts = [line.decode("utf-8-sig", "replace") for line in lines if line]
    counts = [contract_names(next(csv.reader([t]), [])) for t in texts]
    found = max(range(len(counts)), key=lambda i: (counts[i], -i), default=0)
    if found > 0 and counts[found] > counts[0]:
        raise ExtractError(
            path,
            f"the header is on line {found + 1} of the file, not line 1; "
            f"delete the {found} line(s) above it",
        )


def _check_delimiter(path: Path, text: str) -> None:
    """A one-column header that splits into the contract's names on another separator."""
    for delimiter in OTHER_DELIMITERS:
        names = next(csv.reader([text], delimiter=delimiter), [])
        if len(names) > 1 and contract_names(names) >= 2:
            raise ExtractError(
                path,
                f"this looks like a {delimiter!r}-separated file; the contract expects commas "
                f"(found {len(names)} columns when split on {delimiter!r})",
            )


def typed_csv_chunks(path: Path, handle, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    """pyarrow's multi-threaded CSV reader with the contract's types (numbers as float64, text
    as text), batched into chunks of `chunk_rows`."""
    header = _csv_header(path, handle)
    types = {
        name: pa.string() if RAW_COLUMNS.get(name, "text") == "text" else pa.float64()
        for name in header
    }
    try:
        for table in _arrow_csv_tables(handle, types, chunk_rows):
            yield table.to_pandas()
    except pa.ArrowInvalid as exc:
        raise TypedReadFailed(str(exc)) from exc


def _arrow_csv_tables(handle, types: dict, chunk_rows: int | None) -> Iterator[pa.Table]:
    reader = pacsv.open_csv(
        handle,
        read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES),
        convert_options=pacsv.ConvertOptions(
            column_types=types, null_values=BLANK_TEXTS, strings_can_be_null=True
        ),
    )
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in reader:
        pending.append(batch)
        held += batch.num_rows
        while chunk_rows is not None and held >= chunk_rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, chunk_rows)
            rest = table.slice(chunk_rows)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(pending)


def csv_chunks(path: Path, handle, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    """pandas' reader and its type inference. Its C parser ends a value at a NUL byte
    (`PM\\0EB` reads as `PM`), so a file holding one is read as text by pyarrow, which keeps
    the byte for the contract to report, at the reader's speed (`_text_csv_chunks`)."""
    _csv_header(path, handle)
    if has_nul(handle):
        yield from _text_csv_chunks(path, handle, chunk_rows)
        return
    try:
        reader = pd.read_csv(
            handle,
            encoding="utf-8-sig",
            encoding_errors="strict",
            chunksize=chunk_rows,
            low_memory=False,
        )
        if chunk_rows is None:
            yield reader
            return
        with reader:
            yield from reader
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, handle) from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ExtractError(path, f"malformed CSV ({exc})") from exc


def _text_csv_chunks(path: Path, handle, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    """Every column read as text by pyarrow, then each number column converted the way pandas
    infers it: numbers if every value is one, else the texts, so that the contract quotes the
    bad ones (a NUL included). Clean columns are cast in Arrow, at the reader's speed."""
    header = _csv_header(path, handle)
    try:
        for table in _arrow_csv_tables(handle, dict.fromkeys(header, pa.string()), chunk_rows):
            columns, texts = [], []
            for name, column in zip(table.column_names, table.columns, strict=True):
                if RAW_COLUMNS.get(name, "text") != "text":
                    try:
                        column = pc.cast(column, pa.float64())
                    except pa.ArrowInvalid:
                        texts.append(name)
                columns.append(column)
            frame = pa.Table.from_arrays(columns, names=table.column_names).to_pandas()
            for name in texts:
                numbers = pd.to_numeric(frame[name], errors="coerce")
                if numbers.notna().sum() == frame[name].notna().sum():
                    frame[name] = numbers  # e.g. numbers padded with spaces, as pandas reads
            yield frame
    except pa.ArrowInvalid as exc:
        if "UTF8" in str(exc):
            raise _not_utf8(path, handle) from exc
        raise ExtractError(path, f"malformed CSV ({exc})") from exc


def has_nul(handle) -> bool:
    """Whether the file holds a NUL byte anywhere (a scan at memory speed); rewinds it."""
    handle.seek(0)
    found = any(b"\0" in block for block in iter(lambda: handle.read(1 << 20), b""))
    handle.seek(0)
    return found


def _not_utf8(path: Path, handle) -> ExtractError:
    """Locate the first invalid byte in the whole file, block by block: the offsets in a
    decoder's exception are relative to whichever buffer it was decoding, so they cannot give
    the line."""
    handle.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines_before, consumed = 0, b""
    while block := handle.read(1 << 20):
        data = consumed + block
        try:
            decoder.decode(block)
        except UnicodeDecodeError:
            start = _first_invalid(data)
            line = lines_before + data[:start].count(b"\n") + 1
            where = "the header" if line == 1 else f"data row {line - 1}"
            return ExtractError(
                path,
                f"not UTF-8 text (invalid byte 0x{data[start]:02x} on line {line} of the file, "
                f"{where}); save it as UTF-8 CSV",
            )
        # An incomplete last character waits in the decoder; the next block completes it.
        consumed = decoder.getstate()[0]
        lines_before += data[: len(data) - len(consumed)].count(b"\n")
    return ExtractError(path, "not UTF-8 text")


def _first_invalid(data: bytes) -> int:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return len(data) - 1
