"""Read an ETB extract (Excel `Data` sheet, CSV or Parquet) exactly as the contract describes,
whole (`read_extract`) or in chunks of rows (`open_extract(...).chunks()`) so that a file of
any size is read in bounded memory.

This is the one door to every format: it opens the file once, rejects what is not an extract
(lib/extract_checks.py), hands the bytes to the format's reader (lib/extract_excel.py,
lib/extract_csv.py, Parquet below) and numbers the rows. Every failure raises ExtractError.
Chunks carry their position in the file as their index (row 1 under the header = index 0), so
a message about a chunk names rows counted in the whole file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from affluent_assets.lib.extract_checks import (
    SNIFF_BYTES,
    ExtractError,
    check_header,
    not_what_suffix_says,
)
from affluent_assets.lib.extract_csv import TypedReadFailed, csv_chunks, has_nul, typed_csv_chunks
from affluent_assets.lib.extract_excel import excel_chunks

EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")
EXTRACT_SUFFIXES = (*EXCEL_SUFFIXES, ".csv", ".parquet")
DEFAULT_CHUNK_ROWS = 100_000


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
        problem = not_what_suffix_says(self.suffix, self.handle.read(SNIFF_BYTES))
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
        return self.suffix == ".csv" and has_nul(self.handle)

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
            reader = excel_chunks(self.path, self.handle, chunk_rows)
        elif self.suffix == ".csv":
            reader = (typed_csv_chunks if typed else csv_chunks)(self.path, self.handle, chunk_rows)
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


def _parquet_chunks(path: Path, handle, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    try:
        parquet = pq.ParquetFile(handle)
        names = parquet.schema_arrow.names
    except Exception as exc:
        raise ExtractError(path, f"unreadable Parquet file ({exc})") from exc
    check_header(path, names)
    if chunk_rows is None:
        yield parquet.read().to_pandas()
        return
    for batch in parquet.iter_batches(batch_size=chunk_rows):
        yield batch.to_pandas()
