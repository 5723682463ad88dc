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
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import chain, islice
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
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


# What a file's first bytes say it is (magic numbers), for a file whose suffix says otherwise.
_SIGNATURES = (
    (b"\x1f\x8b", "a gzip-compressed file", "decompress it (gunzip) and hand in the file inside"),
    (b"BZh", "a bzip2-compressed file", "decompress it and hand in the file inside"),
    (b"\xfd7zXZ\x00", "an xz-compressed file", "decompress it and hand in the file inside"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file", "decompress it and hand in the file inside"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "extract it and hand in the file inside"),
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook is one too)",
     "if it is a workbook, name it .xlsx; otherwise extract the file inside"),
    (b"PAR1", "a Parquet file", "name it .parquet"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-style Office file (.xls)",
     "save it from Excel as .xlsx or CSV UTF-8"),
    (b"%PDF", "a PDF document", "export the table as CSV UTF-8 or .xlsx"),
    (b"\xff\xfe", "UTF-16 text", "save it as CSV UTF-8"),
    (b"\xfe\xff", "UTF-16 text", "save it as CSV UTF-8"),
)  # fmt: skip
_EXPECTED = {".csv": b"", ".parquet": b"PAR1", ".xlsx": b"PK\x03\x04", ".xlsm": b"PK\x03\x04"}
_SNIFF_BYTES = 4096


def _not_what_suffix_says(suffix: str, head: bytes) -> str | None:
    """Why a file's bytes are not what its suffix says (compressed, another format, binary),
    or None. Only formats the bytes name for sure are described; the readers judge the rest."""
    expected = _EXPECTED.get(suffix)
    if expected is None or (expected and head.startswith(expected)):
        return None
    for magic, what, fix in _SIGNATURES:
        if head.startswith(magic):
            kind = _KINDS[suffix]
            return f"this is {what}, not {kind} (it starts with bytes {_hex(magic)}): {fix}"
    if suffix == ".csv":
        control = sum(byte < 9 or 13 < byte < 32 for byte in head)
        if control * 10 > len(head):  # a NUL in a cell is the contract's to report, not this
            return (
                f"this is binary data, not CSV text ({control} of its first {len(head)} bytes "
                "are control characters): export the table as CSV UTF-8"
            )
        return None
    if _looks_like_text(head):
        start = head[:40].decode("utf-8", "replace").splitlines()[0]
        return (
            f"this is text (it starts {start!r}), not {_KINDS[suffix]}: "
            "if it is a CSV file, name it .csv"
        )
    return None


_KINDS = {
    ".csv": "CSV text",
    ".parquet": "a Parquet file",
    ".xlsx": "an Excel workbook",
    ".xlsm": "an Excel workbook",
}


def _hex(data: bytes) -> str:
    return " ".join(f"{byte:02x}" for byte in data)


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 3:  # not just a character cut at the end of the sample
            return False
    return not CONTROL_CHARACTERS.search(head[:1024].decode("utf-8", "replace"))


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
        self._seek(0)
        problem = _not_what_suffix_says(self.suffix, self.handle.read(_SNIFF_BYTES))
        if problem:
            self.close()
            raise ExtractError(path, problem)

    def _seek(self, offset: int, whence: int = 0) -> int:
        return self.handle.seek(offset, whence)

    def close(self) -> None:
        self.handle.close()

    def has_nul(self) -> bool:
        """Whether a CSV holds a NUL byte (a scan at memory speed). Almost always a rejection:
        no value of the contract holds one."""
        return self.suffix == ".csv" and _has_nul(self.handle)

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


def _normal_name(name: str) -> str:
    return re.sub(r"[\s_]+", " ", name).strip().casefold()


def _check_near_names(path: Path, columns: list[str]) -> None:
    """Contract columns present only under a name that differs in case, spaces or underscores:
    say what was found and what is expected, not that the column is missing."""
    found = {_normal_name(c): c for c in columns}
    near = [
        (found[_normal_name(expected)], expected)
        for expected in RAW_COLUMNS
        if expected not in columns and _normal_name(expected) in found
    ]
    if near:
        named = ", ".join(f"{was!r} where {expected!r} is expected" for was, expected in near)
        raise ExtractError(
            path,
            f"column names differ from the contract's only in case, spaces or underscores: "
            f"{named}; rename them exactly as the contract spells them",
        )


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
    _check_near_names(path, [str(c) for c in columns])


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
    _check_formulas(path, handle, header)
    batch: list[list] = []
    for row in rows:
        batch.append(row)
        if chunk_rows is not None and len(batch) >= chunk_rows:
            yield _excel_frame(batch, header)
            batch = []
    if batch:
        yield _excel_frame(batch, header)


_FORMULA = re.compile(rb"<(?:\w+:)?f[\s>/]")
_SHEET_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


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
    _check_header(path, header)
    return header


def _check_title_lines(path: Path, handle, header: list[str]) -> None:
    """A header under title lines (a report's heading, a date): name the line it is on rather
    than report the titles as column names. Rewinds the file."""
    if _contract_names(header) * 2 > len(RAW_COLUMNS):
        return
    lines = [handle.readline(1 << 16) for _ in range(HEADER_SEARCH_ROWS)]
    handle.seek(0)
    texts = [line.decode("utf-8-sig", "replace") for line in lines if line]
    counts = [_contract_names(next(csv.reader([t]), [])) for t in texts]
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


def _csv_chunks(path: Path, handle, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    """pandas' reader and its type inference. Its C parser ends a value at a NUL byte
    (`PM\\0EB` reads as `PM`), so a file holding one is read as text by pyarrow, which keeps
    the byte for the contract to report, at the reader's speed (`_text_csv_chunks`)."""
    _csv_header(path, handle)
    if _has_nul(handle):
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
