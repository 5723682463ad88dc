"""Read an ETB extract (Excel `Data` sheet, CSV or Parquet) exactly as the contract describes,
whole (`read_extract`) or in chunks of rows (`open_extract(...).chunks()`) so that a file of
any size is read in bounded memory.

Every failure raises ExtractError, whose message names the file and, where it applies, the
column and the rows, so a person can fix the file without reading a stack trace. Chunks carry
their position in the file as their index (row 1 under the header = index 0), so a message
about a chunk names rows counted in the whole file.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import chain, islice
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from python_calamine import CalamineWorkbook

from affluent_assets.lib.contract import DATA_SHEET, RAW_COLUMNS

EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")
EXTRACT_SUFFIXES = (*EXCEL_SUFFIXES, ".csv", ".parquet")
DEFAULT_CHUNK_ROWS = 100_000
# What pandas reads as blank in a CSV; the typed reader is told the same, so both agree.
BLANK_TEXTS = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
]  # fmt: skip
# C0 control characters other than tab, LF and CR, and DEL: never part of a value in the extract.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Separators other than the comma that a spreadsheet may save a "CSV" with.
OTHER_DELIMITERS = (";", "\t", "|")
# How far down the `Data` sheet a header displaced by title rows is looked for.
HEADER_SEARCH_ROWS = 20
# Small blocks: the reader decodes several at once on its threads, and its memory grows much
# faster than the block (16 MiB blocks held ~700 MiB, 1 MiB ~50), while reading no slower.
_CSV_BLOCK_BYTES = 1 << 20


class ExtractError(ValueError):
    """A file that cannot be read as an ETB extract; the message says why, for a person."""

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path.name}: {problem}")


class TypedReadFailed(Exception):
    """The fast typed CSV reader met a value it cannot parse as its column's type. Read the file
    again with `typed=False`: pandas' own inference then lets the contract name every bad row."""


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
    with open_extract(path) as extract:
        frames = list(extract.chunks(chunk_rows=None, typed=False))
    return frames[0] if len(frames) == 1 else pd.concat(frames)


class Extract:
    """One open extract file. The file is opened once: its hash and every chunk come from the
    same bytes even if the file is replaced under its name meanwhile."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.suffix = self.path.suffix.lower()
        if self.suffix not in EXTRACT_SUFFIXES:
            raise ExtractError(
                path,
                f"unsupported file type {self.suffix!r}; "
                f"expected one of {', '.join(EXTRACT_SUFFIXES)}",
            )
        try:
            self.handle = self.path.open("rb")
        except FileNotFoundError:
            raise ExtractError(path, "file not found") from None
        except OSError as exc:
            raise ExtractError(path, f"cannot open the file ({exc.strerror})") from None
        self.size = self._seek(0, 2)
        if self.size == 0:
            self.close()
            raise ExtractError(path, "the file is empty (0 bytes)")

    def _seek(self, offset: int, whence: int = 0) -> int:
        return self.handle.seek(offset, whence)

    def close(self) -> None:
        self.handle.close()

    def sha256(self) -> str:
        self._seek(0)
        return hashlib.file_digest(self.handle, "sha256").hexdigest()

    def chunks(
        self, chunk_rows: int | None = DEFAULT_CHUNK_ROWS, typed: bool = True
    ) -> Iterator[pd.DataFrame]:
        """The table in chunks of at most `chunk_rows` rows (None: one chunk), each indexed by
        its data rows' positions in the file. `typed` reads CSV with the contract's column types
        (fast) and raises TypedReadFailed on a value it cannot parse; otherwise pandas infers."""
        if chunk_rows is not None and chunk_rows < 1:
            raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
        self._seek(0)
        if self.suffix in EXCEL_SUFFIXES:
            reader = _excel_chunks(self.path, self.handle, chunk_rows)
        elif self.suffix == ".csv":
            reader = (_typed_csv_chunks if typed else _csv_chunks)(
                self.path, self.handle, chunk_rows
            )
        else:
            reader = _parquet_chunks(self.path, self.handle, chunk_rows)
        offset = 0
        try:
            for chunk in reader:
                if len(chunk) == 0:
                    continue
                chunk.index = pd.RangeIndex(offset, offset + len(chunk))
                offset += len(chunk)
                yield chunk
        except (ExtractError, TypedReadFailed):
            raise
        except Exception as exc:  # corrupt content the readers do not describe themselves
            raise ExtractError(self.path, f"unreadable file ({type(exc).__name__}: {exc})") from exc
        if offset == 0:
            raise ExtractError(self.path, "the table has a header but no data rows")


@contextmanager
def open_extract(path: str | Path) -> Iterator[Extract]:
    extract = Extract(path)
    try:
        yield extract
    finally:
        extract.close()


def _check_header(path: Path, columns: list[str]) -> None:
    blank = [
        i + 1
        for i, c in enumerate(columns)
        if str(c).strip() == "" or str(c).startswith("Unnamed:")
    ]
    if blank:
        raise ExtractError(path, f"header has blank column names at positions {blank}")
    control = [(i + 1, str(c)) for i, c in enumerate(columns) if CONTROL_CHARACTERS.search(str(c))]
    if control:
        named = ", ".join(f"{name!r} at position {i}" for i, name in control)
        raise ExtractError(path, f"header has control characters in column names: {named}")
    repeated = sorted(name for name, count in Counter(map(str, columns)).items() if count > 1)
    if repeated:
        raise ExtractError(path, f"duplicated header: column(s) {repeated} appear more than once")


def _contract_names(row: list) -> int:
    return sum(str(cell).strip() in RAW_COLUMNS for cell in row)


def _excel_chunks(path: Path, handle, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
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
    found = max(range(len(top)), key=lambda i: (_contract_names(top[i]), -i), default=0)
    if found > 0 and _contract_names(top[found]) > _contract_names(top[0]):
        raise ExtractError(
            path,
            f"the header is on row {found + 1} of sheet {DATA_SHEET!r}, not row 1; "
            f"delete the {found} row(s) above it",
        )
    if not top or all(cell == "" for cell in top[0]):
        raise ExtractError(path, f"sheet {DATA_SHEET!r} is empty")
    header = [str(c) for c in top[0]]
    rows = chain(top[1:], rows)
    _check_header(path, header)
    batch: list[list] = []
    for row in rows:
        batch.append(row)
        if chunk_rows is not None and len(batch) >= chunk_rows:
            yield _excel_frame(batch, header)
            batch = []
    if batch:
        yield _excel_frame(batch, header)


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
    _check_header(path, header)
    return header


def _check_delimiter(path: Path, text: str) -> None:
    """A one-column header that splits into the contract's names on another separator."""
    for delimiter in OTHER_DELIMITERS:
        names = next(csv.reader([text], delimiter=delimiter), [])
        if len(names) > 1 and _contract_names(names) >= 2:
            raise ExtractError(
                path,
                f"this looks like a {delimiter!r}-separated file; the contract expects commas "
                f"(found {len(names)} columns when split on {delimiter!r})",
            )


def _typed_csv_chunks(path: Path, handle, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    """pyarrow's multi-threaded CSV reader with the contract's types (numbers as float64, text
    as text), batched into chunks of `chunk_rows`."""
    header = _csv_header(path, handle)
    types = {
        name: pa.string() if RAW_COLUMNS.get(name, "text") == "text" else pa.float64()
        for name in header
    }
    try:
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
                yield table.slice(0, chunk_rows).to_pandas()
                rest = table.slice(chunk_rows)
                pending, held = rest.to_batches(), rest.num_rows
        if held:
            yield pa.Table.from_batches(pending).to_pandas()
    except pa.ArrowInvalid as exc:
        raise TypedReadFailed(str(exc)) from exc


def _csv_chunks(path: Path, handle, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    """pandas' reader and its type inference. Its C parser ends a value at a NUL byte
    (`PM\\0EB` reads as `PM`), so a file holding one is read by the Python parser, which keeps
    the byte for the contract to report (about 6 times slower, and only for such files)."""
    _csv_header(path, handle)
    engine = "python" if _has_nul(handle) else "c"
    try:
        reader = pd.read_csv(
            handle,
            encoding="utf-8-sig",
            encoding_errors="strict",
            engine=engine,
            chunksize=chunk_rows,
            **({"low_memory": False} if engine == "c" else {}),
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


def _has_nul(handle) -> bool:
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


def _parquet_chunks(path: Path, handle, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    try:
        parquet = pq.ParquetFile(handle)
        names = parquet.schema_arrow.names
    except Exception as exc:
        raise ExtractError(path, f"unreadable Parquet file ({exc})") from exc
    _check_header(path, names)
    if chunk_rows is None:
        yield parquet.read().to_pandas()
        return
    for batch in parquet.iter_batches(batch_size=chunk_rows):
        yield batch.to_pandas()
